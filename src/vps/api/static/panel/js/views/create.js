import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { cents, credits, memory, money } from "../format.js";
import { loadCatalog, session } from "../state.js";
import {
  announce,
  busy,
  clearFieldErrors,
  errorText,
  field,
  mutating,
  notice,
  pageHeading,
  showFieldErrors,
} from "../ui.js";

function planText(plan) {
  return `${plan.name} — ${plan.vcpus} vCPU, ${memory(plan.memory)} RAM, ${plan.storage} GB disk — ${plan.monthly_price}/month`;
}

// The 402 in plain words: what it costs, what there is, what to do.
function creditsExplanation(error) {
  const required = cents(error.required);
  const available = cents(error.available);
  const missing = Math.max(0, required - available);
  return [
    h("strong", {}, "Not enough credits. "),
    `This server costs ${credits(required)} for its first month, paid when it is created, `,
    `and the account has ${credits(available)}. `,
    `Add at least ${credits(missing)} (ask your provider to top up the account), `,
    "or choose a smaller plan or turn backups off. Nothing was charged.",
  ];
}

export async function createPage(container, ctx) {
  const [catalog, account, keys] = await Promise.all([
    loadCatalog(api.get),
    api.get("/api/v1/account/"),
    api.get("/api/v1/ssh-keys/?page_size=100"),
  ]);
  if (!ctx.alive()) return;
  const { plans, systems, locations } = catalog;
  const balance = cents(account.balance);

  const name = h("input", {
    type: "text",
    required: true,
    autocomplete: "off",
    maxlength: "63",
    spellcheck: "false",
  });
  const plan = h(
    "select",
    { required: true },
    plans.map((p) => h("option", { value: String(p.id) }, planText(p))),
  );
  const os = h(
    "select",
    { required: true },
    systems.map((s) => h("option", { value: String(s.id) }, s.name)),
  );
  const location = h(
    "select",
    { required: true },
    locations.map((l) => h("option", { value: l.code }, `${l.name} (${l.code})`)),
  );
  const sshKey = h(
    "select",
    {},
    h("option", { value: "" }, "None (no key installed)"),
    keys.results.map((k) => h("option", { value: String(k.id) }, `${k.name} (${k.fingerprint})`)),
  );
  const hostname = h("input", {
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "web01.example.com",
  });
  const backups = h("input", { type: "checkbox" });
  const summary = h("div", { class: "summary", "aria-live": "polite", id: "price-summary" });
  const message = h("div", { id: "create-message" });
  const submit = mutating(
    h("button", { type: "submit", class: "button button-primary" }, "Create server"),
  );

  function selectedPlan() {
    return plans.find((p) => String(p.id) === plan.value);
  }

  function updateSummary() {
    const chosen = selectedPlan();
    if (!chosen) return;
    const price =
      cents(chosen.monthly_price) + (backups.checked ? cents(chosen.backups_monthly_price) : 0);
    const after = balance - price;
    replace(
      summary,
      h(
        "dl",
        { class: "price" },
        h("dt", {}, "Monthly price"),
        h("dd", { id: "monthly-price" }, credits(price)),
        h("dt", {}, "Balance now"),
        h("dd", {}, credits(balance)),
        h("dt", {}, "Balance after the first month"),
        h("dd", { id: "balance-after", class: after < 0 ? "negative" : "" }, credits(after)),
      ),
      after < 0
        ? h(
            "p",
            { class: "warning-text" },
            `The balance does not cover the first month: ${money(-after)} credits are missing.`,
          )
        : null,
    );
  }
  plan.addEventListener("change", updateSummary);
  backups.addEventListener("change", updateSummary);

  const form = h(
    "form",
    { class: "card form", novalidate: true },
    field({
      label: "Name",
      name: "name",
      control: name,
      hint: "Letters, digits and hyphens, e.g. web-1.",
    }),
    field({ label: "Plan", name: "plan_id", control: plan }),
    field({ label: "Operating system", name: "os_id", control: os }),
    field({ label: "Location", name: "location", control: location }),
    field({
      label: "SSH key",
      name: "ssh_key_id",
      control: sshKey,
      hint: keys.results.length ? null : "You have no SSH keys yet: add one on the SSH keys page.",
    }),
    field({
      label: "Hostname (optional)",
      name: "hostname",
      control: hostname,
      hint: "A fully qualified domain name.",
    }),
    field({
      label: "Enable backups",
      name: "backups_enabled",
      control: backups,
      hint: "Adds the plan's backups price to each month.",
    }),
    summary,
    h(
      "div",
      { class: "actions" },
      h("a", { href: "#/servers", class: "button" }, "Cancel"),
      submit,
    ),
  );

  // Kept while the same form is sent again after a network failure (the first attempt may
  // have reached the service): the retry then answers with the server it created.
  let attempt = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (session.readOnly) return;
    clearFieldErrors(form);
    message.replaceChildren();
    const body = {
      name: name.value.trim(),
      plan_id: Number(plan.value),
      os_id: Number(os.value),
      location: location.value,
      backups_enabled: backups.checked,
    };
    if (hostname.value.trim()) body.hostname = hostname.value.trim();
    if (sshKey.value) body.ssh_key_id = Number(sshKey.value);
    if (!body.name) {
      showFieldErrors(form, [{ field: "name", message: "Give the server a name." }]);
      return;
    }
    const sent = JSON.stringify(body);
    if (attempt?.sent !== sent) attempt = { sent, key: crypto.randomUUID() };
    try {
      const created = await busy(
        submit,
        api.post("/api/v1/servers/", body, { idempotencyKey: attempt.key }),
        "Creating…",
      );
      announce(`Server ${created.name} is being created.`);
      ctx.navigate(`/servers/${created.id}`);
    } catch (error) {
      if (error.status !== 0) attempt = null;
      if (!ctx.alive()) return;
      if (error.code === "insufficient_credits") {
        notice(message, "error", ...creditsExplanation(error));
      } else if (error.fields.length) {
        const rest = showFieldErrors(form, error.fields);
        if (rest.length)
          notice(message, "error", rest.map((f) => `${f.field}: ${f.message}`).join(" "));
      } else {
        notice(message, "error", errorText(error));
      }
      message.scrollIntoView?.({ block: "nearest" });
    }
  });

  replace(
    container,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/servers" }, "Servers"), " / New"),
    pageHeading("Create a server"),
    message,
    form,
  );
  updateSummary();
}
