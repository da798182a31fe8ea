// Money is handled in cents (the API sends decimals with two places as strings).

export function cents(money) {
  const text = String(money ?? "0").trim();
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  const value = Number(whole || "0") * 100 + Number((fraction + "00").slice(0, 2));
  return negative ? -value : value;
}

export function money(valueInCents) {
  const negative = valueInCents < 0;
  const absolute = Math.abs(valueInCents);
  const text = `${Math.floor(absolute / 100)}.${String(absolute % 100).padStart(2, "0")}`;
  return negative ? `-${text}` : text;
}

export function credits(valueInCents) {
  return `${money(valueInCents)} credits`;
}

export function dateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function memory(megabytes) {
  return megabytes >= 1024 && megabytes % 1024 === 0 ? `${megabytes / 1024} GB` : `${megabytes} MB`;
}

export const STATUSES = [
  "provisioning",
  "active",
  "starting",
  "stopping",
  "stopped",
  "rebooting",
  "suspended",
  "error",
];

// Statuses the worker is moving the server out of by itself.
export const TRANSITIONAL = new Set(["provisioning", "starting", "stopping", "rebooting"]);

export function statusLabel(status) {
  return status ? status.charAt(0).toUpperCase() + status.slice(1) : "Unknown";
}

// The state machine's guards (vps.domain.states.POWER_ACTIONS): which status each power
// action is accepted from.
export const POWER_ACTIONS = [
  { kind: "start", label: "Start", from: "stopped" },
  { kind: "stop", label: "Stop", from: "active" },
  { kind: "reboot", label: "Reboot", from: "active" },
];

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}
