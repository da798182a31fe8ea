import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { busy, clearFieldErrors, field, notice, showFieldErrors } from "../ui.js";

export function signInPage(container, { onSignedIn }) {
  document.title = "Sign in · VPS panel";
  const token = h("input", {
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "vps_…",
  });
  const message = h("div", { id: "sign-in-message" });
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card sign-in", novalidate: true },
    field({
      label: "API token",
      name: "token",
      control: token,
      hint: "A token from your provider (operators make one with: vps tokens create NAME). It is kept in an httpOnly cookie for this browser session, out of reach of the page's scripts.",
    }),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    message.replaceChildren();
    const value = token.value.trim();
    if (!value) {
      showFieldErrors(form, [{ field: "token", message: "Enter your API token." }]);
      return;
    }
    try {
      const body = await busy(submit, api.post("/panel/session", { token: value }), "Signing in…");
      token.value = "";
      onSignedIn(body);
    } catch (error) {
      if (error.status === 401) {
        showFieldErrors(form, [
          {
            field: "token",
            message: "This token was not accepted: it is unknown, revoked or expired.",
          },
        ]);
      } else if (error.fields?.length) {
        showFieldErrors(form, error.fields);
      } else {
        notice(message, "error", error.message);
      }
    }
  });
  replace(
    container,
    h(
      "div",
      { class: "narrow" },
      h("h1", { tabindex: "-1" }, "Sign in"),
      h("p", {}, "Manage your servers, SSH keys and credits with an API token."),
      message,
      form,
    ),
  );
  token.focus();
}
