// Pieces shared by the pages: status badges, form fields with inline errors, notices, the
// confirmation dialog, and the read-only guard.

import { h, replace, uid } from "./dom.js";
import { TRANSITIONAL, statusLabel } from "./format.js";
import { session } from "./state.js";

export function badge(status) {
  const node = h("span", { class: "badge" });
  setBadge(node, status);
  return node;
}

export function setBadge(node, status) {
  node.className = `badge badge-${status}${TRANSITIONAL.has(status) ? " badge-busy" : ""}`;
  node.dataset.status = status;
  node.textContent = statusLabel(status);
}

// Status changes are spoken by screen readers through this polite live region.
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A new text node, a moment later, so that the same message twice is read twice.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

export function notice(container, kind, ...content) {
  const node = h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    ...content,
  );
  replace(container, node);
  return node;
}

export function errorText(error) {
  if (error.requestId) return `${error.message} (request ${error.requestId})`;
  return error.message;
}

// A labelled control with a hint and a slot for its error, tied together with ARIA.
export function field({ label, control, hint = null, name }) {
  const id = control.id || uid(`f-${name}`);
  control.id = id;
  control.name = name;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  // Kept: a read-only control already points to the read-only explanation.
  const described = control.getAttribute("aria-describedby");
  control.setAttribute("aria-describedby", [hintId, errorId, described].filter(Boolean).join(" "));
  const wrapper = h(
    "div",
    { class: "field", dataset: { field: name } },
    control.type === "checkbox"
      ? h("div", { class: "check" }, control, h("label", { for: id }, label))
      : [h("label", { for: id }, label), control],
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
  return wrapper;
}

export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// Show each of the API's field errors next to its field; answer the ones with no field.
export function showFieldErrors(form, fields) {
  const unplaced = [];
  let first = null;
  for (const item of fields) {
    const wrapper = form.querySelector(`.field[data-field="${CSS.escape(item.field)}"]`);
    if (!wrapper) {
      unplaced.push(item);
      continue;
    }
    const slot = wrapper.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent} ${item.message}` : item.message;
    slot.hidden = false;
    const control = wrapper.querySelector("input, select, textarea");
    control.setAttribute("aria-invalid", "true");
    first ??= control;
  }
  first?.focus();
  return unplaced;
}

// A modal confirmation: resolves true when confirmed. Escape and Cancel resolve false.
export function confirmDialog({ title, body, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const cancel = h("button", { type: "button", class: "button" }, "Cancel");
    const confirm = h(
      "button",
      { type: "submit", class: danger ? "button button-danger" : "button button-primary" },
      confirmLabel,
    );
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: titleId }, title),
      h("div", { class: "dialog-body" }, body),
      h("div", { class: "actions" }, cancel, confirm),
    );
    const dialog = h("dialog", { "aria-labelledby": titleId, class: "dialog" }, form);
    const previous = document.activeElement;
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (previous instanceof HTMLElement) previous.focus();
      resolve(value);
    };
    cancel.addEventListener("click", () => finish(false));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      finish(true);
    });
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

const READ_ONLY_NOTE_ID = "read-only-note";

// A control that changes something: disabled, and explained, for a read-only token.
export function mutating(control) {
  if (session.readOnly) {
    control.disabled = true;
    control.dataset.readOnly = "true";
    const described = control.getAttribute("aria-describedby");
    control.setAttribute(
      "aria-describedby",
      described ? `${described} ${READ_ONLY_NOTE_ID}` : READ_ONLY_NOTE_ID,
    );
    control.title = "Read-only token: changes are not allowed";
  }
  return control;
}

// A titled section of a page, named for screen readers by its heading.
export function card({ id, title, tone = null, focusable = false }, ...children) {
  return h(
    "section",
    { class: tone ? `card ${tone}` : "card", "aria-labelledby": id },
    h("h2", { id, tabindex: focusable && "-1" }, title),
    ...children,
  );
}

export function pageHeading(text, ...extra) {
  document.title = `${text} · VPS panel`;
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), ...extra);
}

export function busy(button, promise, label = "Working…") {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  return promise.finally(() => {
    button.removeAttribute("aria-busy");
    button.textContent = original;
    if (button.dataset.readOnly !== "true") button.disabled = false;
  });
}
