import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { dateTime, plural } from "../format.js";
import {
  announce,
  busy,
  card,
  clearFieldErrors,
  confirmDialog,
  errorText,
  field,
  mutating,
  notice,
  pageHeading,
  showFieldErrors,
} from "../ui.js";

export async function keysPage(container, ctx) {
  const message = h("div", { id: "keys-message" });
  const list = h("div");
  const name = mutating(
    h("input", { type: "text", autocomplete: "off", maxlength: "100", placeholder: "laptop" }),
  );
  const publicKey = mutating(
    h("textarea", {
      rows: "4",
      spellcheck: "false",
      autocomplete: "off",
      placeholder: "ssh-ed25519 AAAA… me@laptop",
    }),
  );
  const submit = mutating(
    h("button", { type: "submit", class: "button button-primary" }, "Add key"),
  );
  const formMessage = h("div");
  const form = h(
    "form",
    { class: "form", novalidate: true, "aria-labelledby": "add-key-title" },
    formMessage,
    field({ label: "Name", name: "name", control: name }),
    field({
      label: "Public key",
      name: "public_key",
      control: publicKey,
      hint: "The contents of your .pub file (ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa).",
    }),
    h("div", { class: "actions actions-start" }, submit),
  );

  async function load() {
    const page = await api.get("/api/v1/ssh-keys/?page_size=100");
    if (!ctx.alive()) return;
    if (!page.results.length) {
      replace(list, h("p", { class: "empty" }, "No SSH keys yet."));
      return;
    }
    const rows = page.results.map((key) => {
      const remove = mutating(
        h(
          "button",
          {
            type: "button",
            class: "button button-small button-danger",
            "aria-label": `Delete key ${key.name}`,
          },
          "Delete",
        ),
      );
      remove.addEventListener("click", async () => {
        const confirmed = await confirmDialog({
          title: `Delete SSH key “${key.name}”?`,
          body: h(
            "p",
            {},
            `Servers built with it keep it; new servers can no longer use it (${key.fingerprint}).`,
          ),
          confirmLabel: `Delete ${key.name}`,
        });
        if (!confirmed || !ctx.alive()) return;
        try {
          await busy(remove, api.del(`/api/v1/ssh-keys/${key.id}/`), "Deleting…");
          announce(`SSH key ${key.name} deleted.`);
          notice(message, "success", `SSH key ${key.name} deleted.`);
          await load();
          list.closest("section")?.querySelector("h2")?.focus();
        } catch (error) {
          if (ctx.alive()) notice(message, "error", errorText(error));
        }
      });
      return h(
        "tr",
        { dataset: { keyId: String(key.id) } },
        h("th", { scope: "row", "data-label": "Name" }, key.name),
        h("td", { "data-label": "Fingerprint", class: "mono wrap" }, key.fingerprint),
        h("td", { "data-label": "Added" }, dateTime(key.created_at)),
        h("td", { "data-label": "" }, remove),
      );
    });
    replace(
      list,
      h(
        "table",
        { class: "table keys" },
        h("caption", { class: "visually-hidden" }, "SSH keys"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            [
              "Name",
              "Fingerprint",
              "Added",
              h("span", { class: "visually-hidden" }, "Actions"),
            ].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h("tbody", {}, rows),
      ),
      h("p", { class: "hint" }, plural(page.count, "key", "keys")),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    formMessage.replaceChildren();
    const body = { name: name.value.trim(), public_key: publicKey.value.trim() };
    const missing = [];
    if (!body.name) missing.push({ field: "name", message: "Give the key a name." });
    if (!body.public_key) missing.push({ field: "public_key", message: "Paste the public key." });
    if (missing.length) {
      showFieldErrors(form, missing);
      return;
    }
    try {
      const key = await busy(submit, api.post("/api/v1/ssh-keys/", body), "Adding…");
      name.value = "";
      publicKey.value = "";
      notice(message, "success", `SSH key ${key.name} added (${key.fingerprint}).`);
      announce(`SSH key ${key.name} added.`);
      await load();
    } catch (error) {
      if (!ctx.alive()) return;
      if (error.code === "conflict") {
        showFieldErrors(form, [{ field: "public_key", message: error.message }]);
      } else if (error.fields.length) {
        const rest = showFieldErrors(form, error.fields);
        if (rest.length) notice(formMessage, "error", rest.map((f) => f.message).join(" "));
      } else {
        notice(formMessage, "error", errorText(error));
      }
    }
  });

  replace(
    container,
    pageHeading("SSH keys"),
    message,
    card({ id: "keys-title", title: "Your keys", focusable: true }, list),
    card({ id: "add-key-title", title: "Add a key" }, form),
  );
  await load();
}
