/* The SMS gateway's web console: vanilla ES2020, no build step.
 *
 * The API key lives in sessionStorage only and travels in the X-API-Key header. Every tab is
 * one entry of TABS: render(panel) draws it once and returns refresh(), which the scheduler
 * calls now and every REFRESH_MS while the tab is shown and the page is visible.
 * The DOM is built with el() (text nodes, never innerHTML), so API data cannot inject markup.
 */
"use strict";

const KEY_STORAGE = "sms-console-key";
const REFRESH_MS = 5000;
const PAGE_SIZE = 25;
const STATUSES = ["QUEUED", "SENDING", "SENT", "DELIVERED", "FAILED_TEMP", "FAILED_PERM", "CANCELLED"];
const MSG_UNKNOWN_KEY = "That API key is not known. Check it, or create one with make client.";
const MSG_DOWN = "The API is not answering. Is `make up` running?";

/* ---------- formatters ---------- */

const fmt = (() => {
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const stamp = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
  const dash = "—";
  return {
    int: (n) => (n == null ? dash : integer.format(n)),
    cents: (c) => (c == null ? dash : money.format(c / 100)),
    percent: (ratio) => (ratio == null ? dash : `${oneDecimal.format(ratio * 100)} %`),
    ms: (ms) => {
      if (ms == null) return dash;
      return ms < 1000 ? `${integer.format(ms)} ms` : `${oneDecimal.format(ms / 1000)} s`;
    },
    time: (iso) => (iso ? stamp.format(new Date(iso)) : dash),
    clock: (iso) => clock.format(new Date(iso)),
    text: (v) => (v == null || v === "" ? dash : String(v)),
  };
})();

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET a path of the API (relative to the console's own base) with query params. */
async function api(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value != null && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, { headers: { "X-API-Key": session.key, Accept: "application/json" } });
  } catch (_networkError) {
    throw new ApiError(0, "network", MSG_DOWN);
  }
  const body = await response.json().catch(() => null);
  if (response.ok && body) return body;
  const error = (body && body.error) || {};
  if (response.status >= 500 || !body) throw new ApiError(response.status, error.code || "down", MSG_DOWN);
  throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
}

/** api() for a view that can ask again before an answer came: only the latest call's answer
 * is used (an older one resolves to null), so a slow refresh never draws over a newer page. */
function latestOnly() {
  let calls = 0;
  return async (path, params) => {
    const mine = ++calls;
    const body = await api(path, params);
    return mine === calls ? body : null;
  };
}

/* ---------- DOM helpers ---------- */

/** An element with attributes (on* names become listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "testid") node.dataset.testid = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child != null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

function card(label, testid) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label),
    el("div", { class: "value", testid }, "…"));
}

function setText(root, testid, value) {
  const node = $(testid, root);
  if (node) node.textContent = value;
}

/** A scrolling table: columns are [heading, row => cell]; onOpen makes rows keyboard-openable,
 * and rowKey names each row so that replaceKeepingFocus can find it again. */
function table(testid, columns, rows, { rowTestid, onOpen, rowKey } = {}) {
  const head = el("tr", {}, columns.map(([heading]) => el("th", { scope: "col" }, heading)));
  const body = rows.map((row) => {
    const open = onOpen && (() => onOpen(row));
    return el("tr", {
      testid: rowTestid, class: open ? "clickable" : null, tabindex: open ? "0" : null,
      "data-key": rowKey ? rowKey(row) : null,
      onclick: open, onkeydown: open && ((e) => { if (e.key === "Enter") open(); }),
    }, columns.map(([, cell]) => {
      const value = cell(row);
      return value instanceof Node && value.tagName === "TD" ? value : el("td", {}, value);
    }));
  });
  return el("div", { class: "table-wrap" }, el("table", { testid }, el("thead", {}, head), el("tbody", {}, body)));
}

/** Replace a container's content; the row that had the focus (by its data-key) keeps it. */
function replaceKeepingFocus(container, content) {
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  container.replaceChildren(content);
  const again = focused && container.querySelector(`[data-key="${CSS.escape(focused)}"]`);
  if (again) again.focus();
}

function statusCell(status) {
  return el("td", { class: `status-${status}` }, status);
}

function emptyState(testid, message) {
  return el("p", { class: "empty", testid }, message);
}

function showNotice(message) {
  const notice = $("notice");
  notice.textContent = message || "";
  notice.hidden = !message;
}

/* ---------- time ranges ---------- */

const isoSeconds = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

function startOfUtcDay() {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

/** A datetime-local input's value as the API's RFC 3339 UTC time ("" stays ""). */
function localInputToIso(value) {
  return value ? isoSeconds(new Date(value)) : "";
}

/* ---------- charts ---------- */

const chartsAvailable = () => typeof window.Chart === "function";

function makeChart(canvas, type, datasets, yTitle) {
  return new window.Chart(canvas, {
    type,
    data: { labels: [], datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
}

/** Empty the tab panel; its charts are destroyed (Chart.js keeps every chart until then). */
function clearPanel(panel) {
  if (chartsAvailable()) {
    for (const canvas of panel.querySelectorAll("canvas")) window.Chart.getChart(canvas)?.destroy();
  }
  panel.replaceChildren();
}

/** Replace a chart's labels and series in place (no new Chart, no flicker). */
function updateChart(chart, labels, seriesList) {
  chart.data.labels = labels;
  seriesList.forEach((series, i) => { chart.data.datasets[i].data = series; });
  chart.update("none");
}

/* ---------- tabs ---------- */

function renderOverview(panel) {
  const balance = el("section", {}, el("h2", {}, "Balance"), el("div", { class: "cards" },
    card("Available", "balance-available"), card("Held for messages in flight", "balance-held"),
    card("Spent", "balance-spent")));
  const today = el("section", {}, el("h2", {}, "Today (UTC)"), el("div", { class: "cards" },
    card("Accepted", "today-accepted"), card("Delivered", "today-delivered"),
    card("Failed", "today-failed"), card("Cancelled", "today-cancelled"),
    card("Delivery rate", "delivery-rate"), card("Time to deliver p50", "ttd-p50"),
    card("Time to deliver p95", "ttd-p95")));
  const delivered = el("canvas", { testid: "chart-delivered", role: "img",
    "aria-label": "Messages delivered and failed per hour, last 24 hours" });
  const spend = el("canvas", { testid: "chart-spend", role: "img",
    "aria-label": "Spend per hour, last 24 hours" });
  const charts = el("section", {}, el("h2", {}, "Last 24 hours"), chartsAvailable()
    ? el("div", { class: "charts" }, el("div", { class: "chart" }, delivered), el("div", { class: "chart" }, spend))
    : emptyState("charts-unavailable", "Charts are unavailable: Chart.js is not built (run make console)."));
  panel.append(balance, today, charts);

  const graphs = chartsAvailable() && {
    delivered: makeChart(delivered, "bar", [
      { label: "Delivered", data: [], backgroundColor: "#0a6b2d" },
      { label: "Failed", data: [], backgroundColor: "#a4001c" }], "messages"),
    spend: makeChart(spend, "line", [
      { label: "Spend (USD)", data: [], borderColor: "#0b5cad", backgroundColor: "#0b5cad" }], "USD"),
  };

  return async () => {
    const since24h = isoSeconds(new Date(Date.now() - 24 * 3600 * 1000));
    const [me, day, hours] = await Promise.all([
      api("v1/me"),
      api("v1/stats", { since: isoSeconds(startOfUtcDay()), bucket: "1d" }),
      api("v1/stats", { since: since24h, bucket: "1h" }),
    ]);
    setText(panel, "balance-available", fmt.cents(me.credit_cents));
    setText(panel, "balance-held", fmt.cents(me.held_cents));
    setText(panel, "balance-spent", fmt.cents(me.spent_cents));
    const t = day.totals;
    setText(panel, "today-accepted", fmt.int(t.accepted));
    setText(panel, "today-delivered", fmt.int(t.delivered));
    setText(panel, "today-failed", fmt.int(t.failed_perm));
    setText(panel, "today-cancelled", fmt.int(t.cancelled));
    setText(panel, "delivery-rate", fmt.percent(t.delivery_rate));
    setText(panel, "ttd-p50", fmt.ms(t.time_to_deliver_ms && t.time_to_deliver_ms.p50));
    setText(panel, "ttd-p95", fmt.ms(t.time_to_deliver_ms && t.time_to_deliver_ms.p95));
    if (graphs) {
      const labels = hours.series.map((b) => fmt.clock(b.start));
      updateChart(graphs.delivered, labels, [hours.series.map((b) => b.delivered),
        hours.series.map((b) => b.failed_perm)]);
      updateChart(graphs.spend, labels, [hours.series.map((b) => b.spent_cents / 100)]);
    }
  };
}

/** Cursor paging: the cursors of the pages seen so far, so Previous needs no backward cursor. */
function pager(onChange) {
  const cursors = [null];
  let index = 0;
  let next = null;
  const first = el("button", { type: "button", class: "secondary", testid: "page-first" }, "First");
  const previous = el("button", { type: "button", class: "secondary", testid: "page-previous" }, "Previous");
  const nextButton = el("button", { type: "button", class: "secondary", testid: "page-next" }, "Next");
  const sync = () => {
    first.disabled = previous.disabled = index === 0;
    nextButton.disabled = !next;
  };
  const go = (i) => { index = i; onChange(); };
  first.addEventListener("click", () => go(0));
  previous.addEventListener("click", () => go(Math.max(0, index - 1)));
  nextButton.addEventListener("click", () => {
    cursors.length = index + 1;
    cursors.push(next);
    go(index + 1);
  });
  return {
    node: el("div", { class: "pager" }, first, previous, nextButton),
    cursor: () => cursors[index],
    reset: () => { cursors.length = 1; index = 0; },
    seen: (nextCursor) => { next = nextCursor; sync(); },
  };
}

function field(label, input) {
  return el("div", {}, el("label", { for: input.id }, label), input);
}

function messageFilters(onApply) {
  const status = el("select", { id: "f-status", name: "status", testid: "filter-status" },
    el("option", { value: "" }, "Any status"), STATUSES.map((s) => el("option", { value: s }, s)));
  const to = el("input", { id: "f-to", name: "to", type: "tel", placeholder: "+14155550100", testid: "filter-to" });
  const since = el("input", { id: "f-since", name: "since", type: "datetime-local", testid: "filter-since" });
  const until = el("input", { id: "f-until", name: "until", type: "datetime-local", testid: "filter-until" });
  const ref = el("input", { id: "f-ref", name: "client_reference", type: "text", testid: "filter-reference" });
  const form = el("form", { class: "filters", testid: "messages-filters" },
    field("Status", status), field("Recipient", to), field("Since", since), field("Until", until),
    field("Client reference", ref), el("button", { type: "submit", testid: "filter-apply" }, "Apply"));
  form.addEventListener("submit", (e) => { e.preventDefault(); onApply(); });
  return {
    node: form,
    params: () => ({
      status: status.value, to: to.value.trim(), client_reference: ref.value.trim(),
      since: localInputToIso(since.value), until: localInputToIso(until.value),
    }),
  };
}

const MESSAGE_COLUMNS = [
  ["Created", (m) => fmt.time(m.created_at)],
  ["Status", (m) => statusCell(m.status)],
  ["To", (m) => m.to],
  ["From", (m) => m.from],
  ["Parts", (m) => fmt.int(m.parts)],
  ["Cost", (m) => fmt.cents(m.cost_cents)],
  ["Reference", (m) => fmt.text(m.client_reference)],
  ["Text", (m) => el("td", { class: "text" }, m.text)],
];

const TIMELINE_COLUMNS = [
  ["At", (r) => fmt.time(r.at)],
  ["Status", (r) => statusCell(r.status)],
  ["Attempt", (r) => fmt.text(r.attempt)],
  ["Provider", (r) => fmt.text(r.provider)],
  ["Error", (r) => fmt.text(r.error_code)],
  ["Source", (r) => r.source],
];

function messageFields(m) {
  const rows = [
    ["ID", m.id], ["Status", m.status], ["To", m.to], ["From", m.from], ["Text", m.text],
    ["Encoding", fmt.text(m.encoding)], ["Parts", fmt.int(m.parts)], ["Cost", fmt.cents(m.cost_cents)],
    ["Attempts", fmt.int(m.attempts)], ["Provider", fmt.text(m.provider)],
    ["Client reference", fmt.text(m.client_reference)], ["Created", fmt.time(m.created_at)],
    ["Updated", fmt.time(m.updated_at)], ["Expires", fmt.time(m.expires_at)],
    ["Error", m.error ? `${fmt.text(m.error.code)}: ${fmt.text(m.error.message)}` : "—"],
  ];
  return el("dl", { class: "fields", testid: "message-fields" },
    rows.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function renderMessages(panel) {
  let openId = null;
  const filters = messageFilters(() => { paging.reset(); refreshNow(); });
  const paging = pager(refreshNow);
  const list = el("div", { testid: "messages-list" });
  const listView = el("div", {}, filters.node, list, paging.node);
  const detail = el("div", { testid: "message-detail", hidden: true });
  panel.append(listView, detail);

  const fetchLatest = latestOnly();
  const open = (id) => { openId = id; refreshNow(); };
  const back = () => { openId = null; listView.hidden = false; detail.hidden = true; refreshNow(); };

  async function showList() {
    const params = filters.params();
    const page = await fetchLatest("v1/messages", { ...params, limit: PAGE_SIZE, cursor: paging.cursor() });
    if (!page) return;
    paging.seen(page.next_cursor);
    const filtered = Object.values(params).some(Boolean);
    replaceKeepingFocus(list, page.messages.length
      ? table("messages-table", MESSAGE_COLUMNS, page.messages,
        { rowTestid: "message-row", onOpen: (m) => open(m.id), rowKey: (m) => m.id })
      : emptyState("messages-empty", filtered ? "No messages match these filters — clear them to see all."
        : "No messages yet — send one with POST /v1/messages."));
  }

  async function showDetail() {
    const m = await fetchLatest(`v1/messages/${encodeURIComponent(openId)}`);
    if (!m) return;
    const wasHidden = detail.hidden;
    listView.hidden = true;
    detail.hidden = false;
    const backButton = el("button", { type: "button", class: "secondary", testid: "message-back", onclick: back },
      "Back to the list");
    detail.replaceChildren(backButton, el("h2", {}, `Message to ${m.to}`), messageFields(m),
      el("h3", {}, "Timeline"),
      (m.timeline || []).length ? table("timeline", TIMELINE_COLUMNS, m.timeline, { rowTestid: "timeline-row" })
        : emptyState("timeline-empty", "No status changes recorded yet."));
    if (wasHidden) backButton.focus();
  }

  return () => (openId ? showDetail() : showList());
}

function simpleListTab(path, key, testid, columns, emptyMessage) {
  return (panel) => {
    const paging = pager(refreshNow);
    const fetchLatest = latestOnly();
    const list = el("div", {});
    panel.append(list, paging.node);
    return async () => {
      const page = await fetchLatest(path, { limit: PAGE_SIZE, cursor: paging.cursor() });
      if (!page) return;
      paging.seen(page.next_cursor);
      list.replaceChildren(page[key].length ? table(testid, columns, page[key], { rowTestid: `${testid}-row` })
        : emptyState(`${testid}-empty`, emptyMessage));
    };
  };
}

const renderInbound = simpleListTab("v1/inbound", "inbound", "inbound-table", [
  ["Received", (m) => fmt.time(m.received_at)],
  ["From", (m) => m.from],
  ["To", (m) => m.to],
  ["Keyword", (m) => fmt.text(m.keyword)],
  ["Provider", (m) => m.provider],
  ["Text", (m) => el("td", { class: "text" }, m.text)],
], "No inbound messages yet — replies to your numbers appear here (locally: make inbound).");

const renderOptOuts = simpleListTab("v1/opt-outs", "opt_outs", "optouts-table", [
  ["Number", (o) => o.number],
  ["Opted out", (o) => (o.opted_out ? "yes" : "no (opted back in)")],
  ["Changed", (o) => fmt.time(o.changed_at)],
  ["Source", (o) => o.source],
  ["Keyword", (o) => fmt.text(o.keyword)],
], "No opt-outs — numbers that reply STOP (or that you add with POST /v1/opt-outs) appear here.");

const CLIENT_COLUMNS = [
  ["Client", (c) => c.name],
  ["ID", (c) => c.id],
  ["Available", (c) => fmt.cents(c.credit_cents)],
  ["Held", (c) => fmt.cents(c.held_cents)],
  ["Spent", (c) => fmt.cents(c.spent_cents)],
  ["Accepted today", (c) => fmt.int(c.today.accepted)],
  ["Delivered today", (c) => fmt.int(c.today.delivered)],
  ["Failed today", (c) => fmt.int(c.today.failed_perm)],
  ["Spent today", (c) => fmt.cents(c.today.spent_cents)],
];

const QUEUE_COLUMNS = [
  ["Queue", (q) => q.name],
  ["Waiting", (q) => fmt.int(q.visible)],
  ["In flight", (q) => fmt.int(q.in_flight)],
  ["Delayed", (q) => fmt.int(q.delayed)],
  ["Dead letters", (q) => el("td", { class: q.dead_letters ? "bad" : null }, fmt.int(q.dead_letters))],
];

const PROVIDER_COLUMNS = [
  ["Provider", (p) => p.name],
  ["Usable", (p) => el("td", { class: p.usable ? "good" : "bad text" }, p.usable ? "yes" : `no: ${fmt.text(p.reason)}`)],
  ["Breaker", (p) => p.breaker],
  ["Times opened", (p) => fmt.int(p.opened_count)],
  ["Success rate", (p) => fmt.percent(p.success_rate)],
  ["OK / failed in window", (p) => `${fmt.int(p.window_ok)} / ${fmt.int(p.window_failed)}`],
];

function renderOperator(panel) {
  const sections = {
    clients: el("div", {}), queues: el("div", {}), providers: el("div", {}),
  };
  panel.append(
    el("section", {}, el("h2", {}, "Clients"), sections.clients),
    el("section", {}, el("h2", {}, "Queues"), sections.queues),
    el("section", {}, el("h2", {}, "Providers"), sections.providers));
  return async () => {
    const [clients, queues, providers] = await Promise.all([
      api("v1/admin/clients"), api("v1/admin/queues"), api("v1/admin/providers")]);
    sections.clients.replaceChildren(clients.clients.length
      ? table("operator-clients", CLIENT_COLUMNS, clients.clients, { rowTestid: "operator-client-row" })
      : emptyState("operator-clients-empty", "No clients yet — create one with make client NAME=acme CREDITS=500."));
    sections.queues.replaceChildren(table("operator-queues", QUEUE_COLUMNS, queues.queues,
      { rowTestid: "operator-queue-row" }));
    sections.providers.replaceChildren(providers.providers.length
      ? table("operator-providers", PROVIDER_COLUMNS, providers.providers, { rowTestid: "operator-provider-row" })
      : emptyState("operator-providers-empty", "No providers configured — set PROVIDERS for the stage."));
  };
}

/** The console's tabs: one entry each. `operator`: shown to the operator key, else to client keys. */
const TABS = [
  { id: "overview", title: "Overview", operator: false, render: renderOverview },
  { id: "messages", title: "Messages", operator: false, render: renderMessages },
  { id: "inbound", title: "Inbound", operator: false, render: renderInbound },
  { id: "opt-outs", title: "Opt-outs", operator: false, render: renderOptOuts },
  { id: "operator", title: "Operator", operator: true, render: renderOperator },
];

/* ---------- session, tabs and refresh ---------- */

const session = {
  key: sessionStorage.getItem(KEY_STORAGE), operator: false, refresh: null, timer: null, busy: null,
};

function reportError(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(MSG_UNKNOWN_KEY);
    return;
  }
  showNotice(error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`);
}

/** Refresh the shown tab, unless the page is hidden or (not `now`) its last refresh is under way. */
async function runRefresh(now = false) {
  const refresh = session.refresh;  // a tab opened meanwhile has a refresh of its own
  if (!refresh || document.hidden || (session.busy === refresh && !now)) return;
  session.busy = refresh;
  try {
    await refresh();
    showNotice("");
  } catch (error) {
    reportError(error);
  } finally {
    if (session.busy === refresh) session.busy = null;
  }
}

/** Refresh at once, for what the user just did (a filter, a page, a row opened). */
const refreshNow = () => runRefresh(true);

function stopRefresh() {
  clearInterval(session.timer);
  session.timer = null;
  session.refresh = null;
}

function selectTab(tab) {
  stopRefresh();
  for (const button of $("tabs").querySelectorAll('[role="tab"]')) {
    const selected = button.dataset.tab === tab.id;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
  }
  const panel = $("panel");
  panel.setAttribute("aria-labelledby", `tab-${tab.id}`);
  panel.dataset.tab = tab.id;
  clearPanel(panel);
  session.refresh = tab.render(panel);
  runRefresh();
  session.timer = setInterval(() => runRefresh(), REFRESH_MS);
}

/** Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern). */
function onTabKey(event, buttons) {
  const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const at = buttons.indexOf(event.currentTarget);
  const step = moves[event.key];
  const target = Number.isFinite(step) ? (at + step + buttons.length) % buttons.length
    : (step < 0 ? 0 : buttons.length - 1);
  buttons[target].focus();
  buttons[target].click();
}

function showTabs() {
  const tabs = TABS.filter((tab) => tab.operator === session.operator);
  const buttons = tabs.map((tab) => el("button", {
    type: "button", role: "tab", id: `tab-${tab.id}`, "aria-controls": "console-panel",
    testid: `tab-${tab.id}`, "data-tab": tab.id, onclick: () => selectTab(tab),
  }, tab.title));
  buttons.forEach((b) => b.addEventListener("keydown", (e) => onTabKey(e, buttons)));
  $("tabs").replaceChildren(...buttons);
  selectTab(tabs[0]);
}

function showSignedIn(me) {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  const who = $("who");
  who.hidden = false;
  who.textContent = session.operator ? "Operator" : `Client: ${me.name}`;
  showTabs();
}

function signOut(message) {
  stopRefresh();
  sessionStorage.removeItem(KEY_STORAGE);
  session.key = null;
  $("app").hidden = true;
  $("signout").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  $("tabs").replaceChildren();
  clearPanel($("panel"));
  showSigninError(message);
  $("signin-key").value = "";
  $("signin-key").focus();
}

function showSigninError(message) {
  const error = $("signin-error");
  error.textContent = message || "";
  error.hidden = !message;
}

/** What the sign-in form says when /v1/me refused the key or did not answer. */
function signinMessage(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
  if (error.status === 401) return MSG_UNKNOWN_KEY;
  return error.code === "network" || error.status >= 500 ? MSG_DOWN : error.message;
}

/** Ask /v1/me who the key is: a client (200), the operator (403 operator_key), or nobody. */
async function signIn(key) {
  session.key = key;
  try {
    const me = await api("v1/me");
    session.operator = false;
    sessionStorage.setItem(KEY_STORAGE, key);
    showSignedIn(me);
  } catch (error) {
    if (error instanceof ApiError && error.code === "operator_key") {
      session.operator = true;
      sessionStorage.setItem(KEY_STORAGE, key);
      showSignedIn(null);
    } else {
      session.key = null;
      sessionStorage.removeItem(KEY_STORAGE);
      showSigninError(signinMessage(error));
    }
  }
}

function start() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("signin-key").value.trim();
    if (!key) {
      showSigninError("Enter an API key (locally: secret, or admin-secret for the operator).");
      return;
    }
    showSigninError("");
    signIn(key);
  });
  $("signout").addEventListener("click", () => signOut(""));
  document.addEventListener("visibilitychange", () => runRefresh());
  if (session.key) signIn(session.key);
  else $("signin-key").focus();
}

start();
