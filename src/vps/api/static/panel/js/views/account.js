import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { cents, credits, dateTime, plural, statusLabel } from "../format.js";
import { card, pageHeading } from "../ui.js";

const PAGE_SIZE = 20;

export async function accountPage(container, ctx) {
  const page = Math.max(1, Number.parseInt(ctx.query.get("page") ?? "1", 10) || 1);
  const [account, ledger] = await Promise.all([
    api.get("/api/v1/account/"),
    api.get(`/api/v1/account/transactions/${api.query({ page, page_size: PAGE_SIZE })}`),
  ]);
  if (!ctx.alive()) return;
  const pages = Math.max(1, Math.ceil(ledger.count / PAGE_SIZE));
  const rows = ledger.results.map((entry) => {
    const amount = cents(entry.amount);
    return h(
      "tr",
      { dataset: { entryId: String(entry.id), kind: entry.kind } },
      h("td", { "data-label": "Date" }, dateTime(entry.created_at)),
      h(
        "td",
        { "data-label": "Description" },
        // One child: on phones each cell is a two-column grid (its label, its content).
        h(
          "span",
          {},
          entry.description,
          entry.server_id
            ? [" · ", h("a", { href: `#/servers/${entry.server_id}` }, `server ${entry.server_id}`)]
            : null,
        ),
      ),
      h("td", { "data-label": "Kind" }, statusLabel(entry.kind)),
      h(
        "td",
        { "data-label": "Amount", class: `num ${amount < 0 ? "negative" : "positive"}` },
        entry.amount,
      ),
      h("td", { "data-label": "Balance after", class: "num" }, entry.balance_after),
    );
  });
  const link = (target, label) =>
    h(
      "a",
      { class: "button", href: `#/account${api.query({ page: target > 1 ? target : "" })}` },
      label,
    );
  replace(
    container,
    pageHeading("Account"),
    card(
      { id: "balance-title", title: "Balance" },
      h("p", { class: "balance", id: "balance" }, credits(cents(account.balance))),
      h(
        "p",
        { class: "hint" },
        `Account ${account.name}. Credits are prepaid: each server's month is charged up front.`,
      ),
    ),
    card(
      { id: "ledger-title", title: "Ledger" },
      rows.length
        ? h(
            "table",
            { class: "table ledger" },
            h("caption", { class: "visually-hidden" }, "Credit ledger, newest first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Date", "Description", "Kind", "Amount", "Balance after"].map((t) =>
                  h("th", { scope: "col" }, t),
                ),
              ),
            ),
            h("tbody", {}, rows),
          )
        : h("p", { class: "empty" }, "No entries yet."),
      h(
        "nav",
        { class: "pagination", "aria-label": "Pages of the ledger" },
        ledger.previous ? link(page - 1, "Newer") : null,
        h(
          "span",
          { class: "page-count" },
          `Page ${page} of ${pages} · ${plural(ledger.count, "entry", "entries")}`,
        ),
        ledger.next ? link(page + 1, "Older") : null,
      ),
    ),
  );
}
