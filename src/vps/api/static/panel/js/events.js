// One account-wide event stream per tab. Views subscribe to it; a `reset` (events were
// missed) or a reconnection tells them to read the state again.

const listeners = new Set();
let source = null;
let retryTimer = null;
let wasInterrupted = false;

function emit(type, data) {
  for (const listener of listeners) {
    try {
      listener(type, data);
    } catch (error) {
      console.error(error);
    }
  }
}

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function connect() {
  if (source) return;
  source = new EventSource("/api/v1/events/");
  for (const type of ["server.status", "server.updated", "action.status"]) {
    source.addEventListener(type, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      emit(type, data);
    });
  }
  source.addEventListener("reset", () => emit("reset", null));
  source.addEventListener("open", () => {
    document.documentElement.dataset.stream = "open";
    // Events may have been missed while the connection was down (before any id was known,
    // the browser cannot resume): read the state again.
    if (wasInterrupted) emit("reset", null);
    wasInterrupted = false;
  });
  source.addEventListener("error", () => {
    document.documentElement.dataset.stream = "reconnecting";
    wasInterrupted = true;
    if (source && source.readyState === EventSource.CLOSED) {
      // The browser gave up (an error status such as 401 or 429): try again later.
      source = null;
      emit("closed", null);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(connect, 5000);
    }
  });
}

export function disconnect() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  wasInterrupted = false;
  delete document.documentElement.dataset.stream;
}
