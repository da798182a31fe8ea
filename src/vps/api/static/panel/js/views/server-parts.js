// What the server page shows, drawn from API bodies: its facts, its resource usage and its
// action history.

import * as api from "../api.js";
import { usageChart } from "../chart.js";
import { h } from "../dom.js";
import { dateTime, memory, statusLabel } from "../format.js";

const ACTIONS_SHOWN = 20;

export function facts(server) {
  const plan = server.plan;
  const rows = [
    ["IPv4 address", server.ip_address ?? "Not assigned yet", "mono"],
    ["IPv6 address", server.ipv6_address ?? "Not assigned yet", "mono"],
    ["Hostname", server.hostname ?? "—"],
    ["Location", server.location],
    [
      "Plan",
      `${plan.name}: ${plan.vcpus} vCPU, ${memory(plan.memory)} RAM, ` +
        `${plan.storage} GB disk, ${plan.bandwidth} GB/month`,
    ],
    ["Operating system", server.os.name],
    ["Backups", server.backups_enabled ? "Enabled" : "Disabled"],
    ["Created", dateTime(server.created_at)],
    ["Server id", String(server.id)],
  ];
  return rows.map(([term, value, className]) => [
    h("dt", {}, term),
    h("dd", { class: className ?? "" }, value),
  ]);
}

function meter(label, used, total, text) {
  return h(
    "div",
    { class: "meter-row" },
    h("span", { class: "meter-label" }, label),
    h("meter", { min: "0", max: String(total), value: String(used), "aria-label": label }),
    h("span", { class: "meter-value" }, text),
  );
}

export function usageSection(server, samples) {
  const usage = server.resource_usage;
  const plan = server.plan;
  return [
    h(
      "div",
      { class: "meters" },
      meter("CPU", usage.cpu_percent, 100, `${usage.cpu_percent.toFixed(1)} %`),
      meter("Memory", usage.memory_used, plan.memory, `${usage.memory_used} / ${plan.memory} MB`),
      meter("Disk", usage.disk_used, plan.storage, `${usage.disk_used} / ${plan.storage} GB`),
      meter(
        "Bandwidth",
        usage.bandwidth_used,
        plan.bandwidth,
        `${usage.bandwidth_used} / ${plan.bandwidth} GB this month`,
      ),
    ),
    usageChart(samples),
  ];
}

// The newest actions (the API lists them oldest first).
export async function latestActions(id) {
  const path = `/api/v1/servers/${id}/actions/?page_size=${ACTIONS_SHOWN}`;
  const first = await api.get(path);
  if (first.count <= ACTIONS_SHOWN) return first;
  const last = Math.ceil(first.count / ACTIONS_SHOWN);
  const [before, final] = await Promise.all([
    api.get(`${path}&page=${last - 1}`),
    api.get(`${path}&page=${last}`),
  ]);
  return {
    count: first.count,
    results: [...before.results, ...final.results].slice(-ACTIONS_SHOWN),
  };
}

export function historySection(page) {
  if (!page.results.length) return h("p", { class: "empty" }, "No actions yet.");
  const rows = [...page.results]
    .reverse()
    .map((action) =>
      h(
        "tr",
        { dataset: { actionId: String(action.id), kind: action.kind, status: action.status } },
        h("td", { "data-label": "Action" }, statusLabel(action.kind)),
        h(
          "td",
          { "data-label": "Result" },
          h("span", { class: `result result-${action.status}` }, action.status),
        ),
        h("td", { "data-label": "Started" }, dateTime(action.started_at)),
        h(
          "td",
          { "data-label": "Finished" },
          action.finished_at ? dateTime(action.finished_at) : "—",
        ),
        h("td", { "data-label": "Error" }, action.error ? action.error.message : "—"),
      ),
    );
  const headings = ["Action", "Result", "Started", "Finished", "Error"];
  return [
    h(
      "table",
      { class: "table actions-table" },
      h("caption", { class: "visually-hidden" }, "Action history, newest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headings.map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h("tbody", {}, rows),
    ),
    page.count > page.results.length
      ? h("p", { class: "hint" }, `The latest ${page.results.length} of ${page.count} actions.`)
      : null,
  ];
}
