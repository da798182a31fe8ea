// The panel's entry point: the session, the page shell and a hash router (the service
// serves one page at `/`, so every page lives after the `#`).

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import * as events from "./events.js";
import { forgetCatalog, session, setSession } from "./state.js";
import { announce, notice } from "./ui.js";
import { accountPage } from "./views/account.js";
import { createPage } from "./views/create.js";
import { keysPage } from "./views/keys.js";
import { serverPage } from "./views/server.js";
import { serversPage } from "./views/servers.js";
import { signInPage } from "./views/signin.js";

const routes = [
  { pattern: /^\/servers\/?$/, section: "servers", view: serversPage },
  { pattern: /^\/servers\/new\/?$/, section: "servers", view: createPage },
  { pattern: /^\/servers\/([^/]+)\/?$/, section: "servers", view: serverPage },
  { pattern: /^\/ssh-keys\/?$/, section: "ssh-keys", view: keysPage },
  { pattern: /^\/account\/?$/, section: "account", view: accountPage },
];

const main = () => document.getElementById("main");
let cleanups = [];
let generation = 0;
let rendered = false;

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/servers";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

export function navigate(path) {
  if (location.hash === `#${path}`) {
    render();
  } else {
    location.hash = path;
  }
}

function runCleanups() {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch (error) {
      console.error(error);
    }
  }
  cleanups = [];
}

function showShell(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("read-only-note").hidden = !(signedIn && session.readOnly);
  document.getElementById("who-mode").hidden = !(signedIn && session.readOnly);
  document.getElementById("who-name").textContent = signedIn ? session.account.name : "";
  document.body.dataset.signedIn = signedIn ? "true" : "false";
  document.body.dataset.readOnly = signedIn && session.readOnly ? "true" : "false";
}

async function render() {
  runCleanups();
  generation += 1;
  const mine = generation;
  const container = main();
  if (!session.account) {
    showShell(false);
    signInPage(container, { onSignedIn: signedIn });
    rendered = true;
    return;
  }
  showShell(true);
  const { path, query } = parseHash();
  let matched = null;
  let params = [];
  for (const route of routes) {
    const found = path.match(route.pattern);
    if (found) {
      matched = route;
      params = found.slice(1);
      break;
    }
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (matched && link.dataset.section === matched.section) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  const ctx = {
    params,
    query,
    navigate,
    alive: () => mine === generation,
    onCleanup: (fn) => cleanups.push(fn),
  };
  container.setAttribute("aria-busy", "true");
  try {
    if (!matched) {
      document.title = "Page not found · VPS panel";
      replace(
        container,
        h("h1", { tabindex: "-1" }, "Page not found"),
        h("p", {}, "There is no such page. ", h("a", { href: "#/servers" }, "See your servers.")),
      );
    } else {
      await matched.view(container, ctx);
    }
  } catch (error) {
    if (!ctx.alive()) return;
    if (error instanceof api.ApiError && error.status === 401) return;
    replace(container, h("h1", { tabindex: "-1" }, "Something went wrong"));
    notice(container.appendChild(h("div")), "error", error.message || String(error));
  } finally {
    if (ctx.alive()) {
      container.removeAttribute("aria-busy");
      container.dataset.ready = path;
      // Moved to the new page's heading on navigation; a fresh load starts at the top
      // (where the skip link is), as any page does.
      if (rendered) container.querySelector("h1")?.focus();
      rendered = true;
    }
  }
}

function signedIn(body) {
  setSession(body);
  events.connect();
  if (!location.hash.startsWith("#/") || location.hash === "#/signed-out") {
    history.replaceState(null, "", "#/servers");
  }
  render();
}

function signedOut(message) {
  events.disconnect();
  forgetCatalog();
  setSession(null);
  render();
  if (message) {
    const slot = document.getElementById("sign-in-message");
    if (slot) notice(slot, "warning", message);
    announce(message);
  }
}

async function signOut() {
  const button = document.getElementById("sign-out");
  button.disabled = true;
  try {
    await api.request("DELETE", "/panel/session");
  } catch (error) {
    if (!(error instanceof api.ApiError && error.status === 401)) {
      button.disabled = false;
      announce(`Sign out failed: ${error.message}`);
      return;
    }
  }
  events.disconnect();
  // A fresh page: nothing of the session stays in memory.
  history.replaceState(null, "", "/#/signed-out");
  location.reload();
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    main().focus();
  });
  api.onUnauthorized(() => {
    if (session.account) signedOut("Your session has ended. Sign in again.");
  });
  events.subscribe((type) => {
    // The stream was refused: find out whether the session is still valid.
    if (type === "closed" && session.account) {
      api.get("/panel/session").catch((error) => {
        if (error.status === 401) signedOut("Your session has ended. Sign in again.");
      });
    }
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/")) render();
  });
  let body = null;
  try {
    body = await api.get("/panel/session");
  } catch (error) {
    if (error.status !== 401) {
      replace(main(), h("h1", {}, "The service cannot be reached"));
      notice(main().appendChild(h("div")), "error", error.message);
      return;
    }
  }
  if (body) {
    signedIn(body);
  } else {
    render();
    if (location.hash === "#/signed-out") {
      const slot = document.getElementById("sign-in-message");
      if (slot) notice(slot, "info", "You are signed out.");
    }
  }
}

start();
