import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as events from "../events.js";
import { POWER_ACTIONS, TRANSITIONAL } from "../format.js";
import { session } from "../state.js";
import {
  announce,
  badge,
  busy,
  card,
  clearFieldErrors,
  confirmDialog,
  errorText,
  field,
  mutating,
  notice,
  pageHeading,
  setBadge,
  showFieldErrors,
} from "../ui.js";
import { facts, historySection, latestActions, usageSection } from "./server-parts.js";

// Usage is refreshed by the worker every VPS_USAGE_SAMPLE_SECONDS (10 s by default); the
// status never needs polling (it comes from the event stream).
const POLL_MS = 10000;
const MAX_SAMPLES = 60;
// Usage samples per server id, kept while the page is loaded (not across sign-ins).
const samplesByServer = new Map();

function notFound(container, id) {
  replace(
    container,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/servers" }, "Servers")),
    pageHeading("Server not found"),
    h(
      "p",
      { class: "not-found" },
      `There is no server ${id} in this account: it may have been deleted, or belong to another account.`,
    ),
    h("p", {}, h("a", { href: "#/servers" }, "Back to your servers")),
  );
}

function addSample(server) {
  const usage = server.resource_usage;
  const samples = samplesByServer.get(server.id) ?? [];
  samples.push({
    cpu: usage.cpu_percent,
    memory: server.plan.memory ? (100 * usage.memory_used) / server.plan.memory : 0,
  });
  samplesByServer.set(server.id, samples.slice(-MAX_SAMPLES));
}

function disabledReason(status, action) {
  if (session.readOnly) return "Read-only token.";
  if (TRANSITIONAL.has(status)) return `Available once the server is no longer ${status}.`;
  if (status === "suspended" || status === "error")
    return `Not available while the server is ${status}.`;
  return action.from === "stopped"
    ? "The server is already running."
    : "The server is not running.";
}

export async function serverPage(container, ctx) {
  const rawId = ctx.params[0];
  if (!/^[1-9][0-9]{0,17}$/.test(rawId)) {
    notFound(container, rawId);
    return;
  }
  const id = Number(rawId);
  let server = null;
  let gone = false;
  let actionsWanted = false;

  const statusBadge = badge("provisioning");
  const title = h("h1", { tabindex: "-1" });
  const message = h("div", { id: "server-message" });
  const errorInfo = h("div");
  const powerButtons = POWER_ACTIONS.map((action) => {
    const button = mutating(
      h(
        "button",
        { type: "button", class: "button", dataset: { action: action.kind } },
        action.label,
      ),
    );
    button.addEventListener("click", () => power(action, button));
    return { action, button };
  });
  const powerHint = h("p", { class: "hint", id: "power-hint" });
  const overview = h("dl", { class: "facts" });
  const usage = h("div", { class: "usage" });
  const history = h("div", { class: "history" });

  const nameInput = h("input", {
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "63",
  });
  const hostnameInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const backupsInput = h("input", { type: "checkbox" });
  const saveButton = mutating(
    h("button", { type: "submit", class: "button button-primary" }, "Save changes"),
  );
  const editMessage = h("div");
  for (const control of [nameInput, hostnameInput, backupsInput]) mutating(control);
  const editForm = h(
    "form",
    { class: "form", novalidate: true, "aria-labelledby": "settings-title" },
    editMessage,
    field({ label: "Name", name: "name", control: nameInput }),
    field({
      label: "Hostname",
      name: "hostname",
      control: hostnameInput,
      hint: "A fully qualified domain name.",
    }),
    field({ label: "Enable backups", name: "backups_enabled", control: backupsInput }),
    h("div", { class: "actions" }, saveButton),
  );
  const deleteButton = mutating(
    h("button", { type: "button", class: "button button-danger" }, "Delete server…"),
  );

  function fillForm() {
    nameInput.value = server.name;
    hostnameInput.value = server.hostname ?? "";
    backupsInput.checked = server.backups_enabled;
  }

  function drawStatus(status) {
    setBadge(statusBadge, status);
    for (const { action, button } of powerButtons) {
      const allowed = !gone && !session.readOnly && status === action.from;
      button.disabled = !allowed;
      button.title = allowed ? "" : disabledReason(status, action);
    }
    powerHint.textContent = gone
      ? "This server has been deleted."
      : session.readOnly
        ? "Power actions are disabled: this token is read-only."
        : TRANSITIONAL.has(status)
          ? `The server is ${status}; power actions come back when it finishes.`
          : status === "active"
            ? "Stop and reboot are available while the server runs."
            : status === "stopped"
              ? "Start is available while the server is stopped."
              : `No power action is available while the server is ${status}.`;
  }

  function draw() {
    title.textContent = server.name;
    document.title = `${server.name} · VPS panel`;
    drawStatus(server.status);
    replace(
      errorInfo,
      server.error
        ? h(
            "div",
            { class: "notice notice-error", role: "alert" },
            server.error.message || server.error.code,
          )
        : null,
    );
    replace(overview, facts(server));
    replace(usage, usageSection(server, samplesByServer.get(server.id) ?? []));
  }

  function drawHistory(page) {
    replace(history, historySection(page));
  }

  function markGone() {
    gone = true;
    drawStatus(server?.status ?? "deleted");
    notice(
      message,
      "warning",
      "This server has been deleted. ",
      h("a", { href: "#/servers" }, "Back to your servers"),
    );
    for (const control of editForm.querySelectorAll("input, button")) control.disabled = true;
    deleteButton.disabled = true;
  }

  const refresh = api.coalesced(async () => {
    const withActions = actionsWanted;
    actionsWanted = false;
    const [fresh, history] = await Promise.all([
      api.get(`/api/v1/servers/${id}/`),
      withActions ? latestActions(id) : null,
    ]);
    if (!ctx.alive()) return;
    const firstDraw = server === null;
    server = fresh;
    addSample(server);
    draw();
    if (history) drawHistory(history);
    if (firstDraw) fillForm();
  }, ctx.alive);

  async function load({ first = false, actions = true } = {}) {
    if (gone) return;
    actionsWanted ||= actions;
    try {
      await refresh();
    } catch (error) {
      if (!ctx.alive()) return;
      if (error.status === 404 || (error.status === 400 && first)) {
        if (first) throw error;
        markGone();
      } else if (error.status !== 401) {
        notice(message, "error", errorText(error));
      }
    }
  }

  async function power(action, button) {
    message.replaceChildren();
    try {
      const result = await busy(
        button,
        api.post(`/api/v1/servers/${id}/${action.kind}/`),
        `${action.label}…`,
      );
      if (!ctx.alive()) return;
      server.status = result.server.status;
      drawStatus(server.status);
      notice(message, "success", `${result.message}.`);
      load();
    } catch (error) {
      if (!ctx.alive()) return;
      notice(message, "error", errorText(error));
      drawStatus(error.currentStatus ?? server.status);
    }
  }

  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (session.readOnly || gone) return;
    clearFieldErrors(editForm);
    editMessage.replaceChildren();
    const changes = {};
    if (nameInput.value.trim() !== server.name) changes.name = nameInput.value.trim();
    if (hostnameInput.value.trim() !== (server.hostname ?? ""))
      changes.hostname = hostnameInput.value.trim();
    if (backupsInput.checked !== server.backups_enabled)
      changes.backups_enabled = backupsInput.checked;
    if (!Object.keys(changes).length) {
      notice(editMessage, "info", "Nothing has changed.");
      return;
    }
    try {
      server = await busy(saveButton, api.patch(`/api/v1/servers/${id}/`, changes), "Saving…");
      if (!ctx.alive()) return;
      draw();
      fillForm();
      notice(editMessage, "success", "Changes saved.");
    } catch (error) {
      if (!ctx.alive()) return;
      const rest = error.fields.length ? showFieldErrors(editForm, error.fields) : [];
      if (!error.fields.length || rest.length) notice(editMessage, "error", errorText(error));
    }
  });

  deleteButton.addEventListener("click", async () => {
    if (!server || session.readOnly) return;
    const name = server.name;
    const confirmed = await confirmDialog({
      title: `Delete server “${name}”?`,
      body: [
        h(
          "p",
          {},
          `The server ${name}${server.ip_address ? ` (${server.ip_address})` : ""} and its disk will be destroyed. This cannot be undone.`,
        ),
      ],
      confirmLabel: `Delete ${name}`,
    });
    if (!confirmed || !ctx.alive()) return;
    try {
      await busy(deleteButton, api.del(`/api/v1/servers/${id}/`), "Deleting…");
      gone = true;
      announce(`Server ${name} is being deleted.`);
      ctx.navigate("/servers");
    } catch (error) {
      if (ctx.alive()) notice(message, "error", errorText(error));
    }
  });

  ctx.onCleanup(
    events.subscribe((type, data) => {
      if (type === "reset") {
        load();
        return;
      }
      if (!data || data.server_id !== id) return;
      if (type === "server.status") {
        if (data.status === "deleting" || data.status === "deleted") {
          if (!gone) markGone();
          return;
        }
        if (server) {
          server.status = data.status;
          drawStatus(data.status);
          announce(`Server ${server.name} is now ${data.status}.`);
          // "Server is stopping." is old news once it has stopped.
          if (!TRANSITIONAL.has(data.status) && message.querySelector(".notice-success")) {
            message.replaceChildren();
          }
        }
      }
      load();
    }),
  );
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") load({ actions: false });
  }, POLL_MS);
  ctx.onCleanup(() => clearInterval(timer));

  try {
    await load({ first: true });
  } catch (error) {
    if (error.status === 404 || error.status === 400) {
      clearInterval(timer);
      notFound(container, rawId);
      return;
    }
    throw error;
  }
  if (!ctx.alive() || !server) return;

  replace(
    container,
    h(
      "p",
      { class: "breadcrumb" },
      h("a", { href: "#/servers" }, "Servers"),
      " / ",
      h("span", {}, `Server ${id}`),
    ),
    h("div", { class: "page-head" }, h("div", { class: "title-line" }, title, statusBadge)),
    errorInfo,
    message,
    card(
      { id: "power-title", title: "Power" },
      h(
        "div",
        { class: "actions actions-start", role: "group", "aria-describedby": "power-hint" },
        powerButtons.map((p) => p.button),
      ),
      powerHint,
    ),
    h(
      "div",
      { class: "grid" },
      card({ id: "overview-title", title: "Overview" }, overview),
      card({ id: "usage-title", title: "Resource usage" }, usage),
    ),
    card({ id: "history-title", title: "Action history" }, history),
    card({ id: "settings-title", title: "Settings" }, editForm),
    card(
      { id: "delete-title", title: "Delete", tone: "danger-zone" },
      h("p", {}, "Deleting destroys the server and its disk. This cannot be undone."),
      deleteButton,
    ),
  );
}
