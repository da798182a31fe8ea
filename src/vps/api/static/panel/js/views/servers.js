import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as events from "../events.js";
import { STATUSES, plural, statusLabel } from "../format.js";
import { loadCatalog } from "../state.js";
import { announce, badge, mutating, notice, pageHeading, setBadge } from "../ui.js";

const PAGE_SIZE = 10;

function listHash(filters) {
  return `/servers${api.query(filters)}`;
}

export async function serversPage(container, ctx) {
  const status = STATUSES.includes(ctx.query.get("status")) ? ctx.query.get("status") : "";
  const location = ctx.query.get("location") ?? "";
  const page = Math.max(1, Number.parseInt(ctx.query.get("page") ?? "1", 10) || 1);
  const filters = { status, location, page: page > 1 ? page : "" };

  const create = mutating(
    h("button", { type: "button", class: "button button-primary" }, "Create server"),
  );
  create.addEventListener("click", () => ctx.navigate("/servers/new"));
  const message = h("div");
  const results = h("div", { class: "results" });
  const filterForm = h("form", { class: "filters", "aria-label": "Filter servers" });

  replace(container, pageHeading("Servers", create), message, filterForm, results);

  const { locations } = await loadCatalog(api.get);
  const statusSelect = h(
    "select",
    { id: "filter-status", name: "status", value: status },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s }, statusLabel(s))),
  );
  const locationSelect = h(
    "select",
    { id: "filter-location", name: "location", value: location },
    h("option", { value: "" }, "Any location"),
    locations.map((l) => h("option", { value: l.code }, `${l.name} (${l.code})`)),
  );
  const onFilter = () =>
    ctx.navigate(listHash({ status: statusSelect.value, location: locationSelect.value }));
  statusSelect.addEventListener("change", onFilter);
  locationSelect.addEventListener("change", onFilter);
  replace(
    filterForm,
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-location" }, "Location"),
      locationSelect,
    ),
  );
  filterForm.addEventListener("submit", (event) => event.preventDefault());

  const rows = new Map();
  const refresh = api.coalesced(async () => {
    const body = await api.get(
      `/api/v1/servers/${api.query({ status, location, page, page_size: PAGE_SIZE })}`,
    );
    if (!ctx.alive()) return;
    if (!body.results.length && page > 1 && body.count > 0) {
      // The page emptied (servers deleted): go to the last one that has servers.
      ctx.navigate(listHash({ ...filters, page: Math.ceil(body.count / PAGE_SIZE) }));
      return;
    }
    draw(body);
  }, ctx.alive);

  async function load() {
    try {
      await refresh();
    } catch (error) {
      if (ctx.alive()) notice(message, "error", error.message);
    }
  }

  function draw(body) {
    rows.clear();
    if (!body.results.length) {
      const filtered = status || location;
      replace(
        results,
        h(
          "p",
          { class: "empty" },
          filtered ? "No servers match these filters." : "You have no servers yet.",
        ),
      );
      return;
    }
    const tbody = h("tbody");
    for (const server of body.results) {
      const statusBadge = badge(server.status);
      const row = h(
        "tr",
        { dataset: { serverId: String(server.id) } },
        h(
          "th",
          { scope: "row", "data-label": "Name" },
          h("a", { href: `#/servers/${server.id}` }, server.name),
        ),
        h("td", { "data-label": "Status" }, statusBadge),
        h("td", { "data-label": "Location" }, server.location),
        h("td", { "data-label": "Plan" }, server.plan.name),
        h("td", { "data-label": "IPv4", class: "mono" }, server.ip_address ?? "—"),
      );
      rows.set(server.id, { server, badge: statusBadge });
      tbody.append(row);
    }
    const pages = Math.max(1, Math.ceil(body.count / PAGE_SIZE));
    const previous = h(
      "a",
      { class: "button", href: `#${listHash({ ...filters, page: page - 1 > 1 ? page - 1 : "" })}` },
      "Previous",
    );
    const next = h(
      "a",
      { class: "button", href: `#${listHash({ ...filters, page: page + 1 })}` },
      "Next",
    );
    replace(
      results,
      h(
        "table",
        { class: "table servers" },
        h("caption", { class: "visually-hidden" }, "Servers"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Status", "Location", "Plan", "IPv4"].map((title) =>
              h("th", { scope: "col" }, title),
            ),
          ),
        ),
        tbody,
      ),
      h(
        "nav",
        { class: "pagination", "aria-label": "Pages of servers" },
        body.previous ? previous : null,
        h(
          "span",
          { class: "page-count" },
          `Page ${page} of ${pages} · ${plural(body.count, "server", "servers")}`,
        ),
        body.next ? next : null,
      ),
    );
  }

  ctx.onCleanup(
    events.subscribe((type, data) => {
      if (type === "reset") {
        load();
        return;
      }
      if (type === "server.updated") {
        // Renamed elsewhere (another tab, a script): show the new name.
        if (rows.has(data.server_id)) load();
        return;
      }
      if (type !== "server.status") return;
      const shown = rows.get(data.server_id);
      if (shown && data.status !== "deleting" && data.status !== "deleted") {
        setBadge(shown.badge, data.status);
        announce(`Server ${shown.server.name} is now ${data.status}.`);
        // A filter on status, or addresses that just appeared: read the page again.
        if (status || !shown.server.ip_address) load();
      } else {
        // A server created, deleted, or not on this page: counts and pages move.
        load();
      }
    }),
  );
  await load();
}
