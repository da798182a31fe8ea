// The panel is a client of the public API: the session cookie stands in for the bearer
// token, and every request that changes something carries the CSRF header.

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body?.error ?? {};
    super(detail.message || `The request failed (HTTP ${status}).`);
    this.status = status;
    this.code = detail.code ?? "http_error";
    this.fields = detail.fields ?? [];
    this.required = detail.required ?? null;
    this.available = detail.available ?? null;
    this.currentStatus = detail.current_status ?? null;
    this.requestId = detail.request_id ?? null;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

const unauthorizedHandlers = new Set();

// Called when the API answers 401: the session has expired or was revoked elsewhere.
export function onUnauthorized(handler) {
  unauthorizedHandlers.add(handler);
}

export async function request(method, path, body = undefined, { idempotencyKey } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = cookie("vps_csrf");
  }
  if (method === "POST") {
    // A form that may send the same request again after a network failure passes its own
    // key, so that the second attempt cannot create a second server.
    headers["Idempotency-Key"] = idempotencyKey ?? crypto.randomUUID();
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, {
      error: {
        code: "network_error",
        message: "The service cannot be reached. Check your connection and try again.",
      },
    });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && path.startsWith("/api/")) {
      for (const handler of unauthorizedHandlers) handler(error);
    }
    throw error;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}, options = {}) => request("POST", path, body, options);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// One run at a time: calls made while one runs fold into a single rerun after it, so a burst
// of events costs at most two requests and an older answer never overwrites a newer one.
export function coalesced(once, alive = () => true) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await once();
      } while (again && alive());
    } finally {
      running = false;
    }
  };
}
