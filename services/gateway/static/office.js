// The pairing office's page (services/gateway/office_routes.py serves it): tables and SVG charts drawn here,
// data from this gateway only (/v1/office, /v1/offers) and kept live by its Server-Sent Events.
"use strict";

const errors = [];
function fail(message) {
  errors.push(String(message));
  document.body.dataset.errors = errors.join(" | ");
}
window.addEventListener("error", (e) => fail(e.message || "error"));
window.addEventListener("unhandledrejection", (e) => fail("unhandled: " + (e.reason && e.reason.message || e.reason)));
document.addEventListener("securitypolicyviolation", (e) => fail("blocked by the page's policy: " + e.violatedDirective));

const COUNTIES_ZH = {
  yanhe: "沿河土家族自治县", yuping: "玉屏侗族自治县", dejiang: "德江县", sinan: "思南县", yinjiang: "印江土家族苗族自治县",
  songtao: "松桃苗族自治县", shiqian: "石阡县", jiangkou: "江口县", bijiang: "碧江区", wanshan: "万山区",
};
const PRODUCTS_ZH = {
  chili: "辣椒", oil_tea_fruit: "油茶果", black_fungus: "黑木耳", sweet_potato: "红薯", tea_leaf: "茶叶", sorghum: "高粱",
  citrus: "柑橘", vegetables: "蔬菜", tea_tree_mushroom: "茶树菇", live_pig: "生猪", eco_chicken: "生态鸡", white_goat: "白山羊",
};
const BASIS_ZH = { floor: "保底价", market: "市场价", order_limit: "订单限价" };
const TEXT = {
  title: ["{county} production-market pairing office", "{county}产销对接办公室"],
  subtitle: ["Tongren, Guizhou · money in yuan · live from the farmlink gateway", "贵州省铜仁市 · 金额单位：元 · 实时数据来自 farmlink 网关"],
  offers: ["Open offers", "在售批次"], fills: ["Recent fills", "最新成交"], commitments: ["Guaranteed-floor commitments", "保底收购承诺"],
  coverage: ["Registered-poor households with and without industry income, by village", "各村建档立卡户有无产业收入"],
  plans: ["Plans against actuals", "规划与实际"],
  pairings: ["Pairings: support delivered and the helped villages", "结对帮扶：帮扶投入与受扶村"],
  projects: ["Projects: milestones", "项目清单：节点"],
  pairing: ["pairing", "结对"], kind: ["kind", "类型"], helper: ["helper", "帮扶方"], helped: ["helped", "受扶方"], team: ["team", "工作组"],
  support: ["support (yuan)", "帮扶投入（元）"], deliveries: ["deliveries", "批次"], project: ["project", "项目"],
  owner: ["owning team", "责任组"], due: ["due", "完成期限"], reached: ["milestones reached", "已完成节点"], open_milestones: ["open milestones (due)", "未完成节点（期限）"],
  lot: ["lot", "批次"], product: ["product", "产品"], grade: ["grade", "等级"], cooperative: ["cooperative", "合作社"],
  township: ["township", "乡镇"], village: ["village", "村"], county: ["county", "县"], left: ["left", "剩余"],
  from: ["from", "起始"], until: ["until", "截止"], buyer: ["buyer", "采购方"], quantity: ["quantity", "数量"],
  price: ["price (yuan)", "单价（元）"], basis: ["basis", "定价依据"], revenue: ["revenue (yuan)", "金额（元）"], at: ["committed", "成交时间"],
  outlet: ["order / commitment", "订单 / 承诺"], floor: ["floor", "保底价"], market: ["market", "市场价"], paid: ["paid", "成交价"],
  activations: ["floor activations", "保底触发"], above: ["paid above the market (yuan)", "高于市场价多付（元）"],
  commitment_note: ["{buyer}, {product}, floor {floor} yuan, {market} market, {from} to {to}: {n} fills, {a} floor activations, "
    + "{above} yuan paid above the market.", "{buyer}，{product}，保底价 {floor} 元，参考市场 {market}，{from} 至 {to}：成交 {n} 笔，"
    + "保底触发 {a} 次，高于市场价多付 {above} 元。"],
  chart_commitment: ["market price against the floor over time (yuan per unit)", "市场价与保底价随时间变化（元/单位）"],
  with_income: ["with income", "有产业收入"], without_income: ["without income", "无产业收入"], households: ["households", "户数"],
  registered_poor: ["registered poor", "建档立卡户"], paid_total: ["paid (yuan)", "已付（元）"],
  plan: ["plan", "规划"], planned: ["planned (mu)", "规划面积（亩）"], planted: ["planted (mu)", "种植面积（亩）"],
  target: ["target income per household (yuan)", "户均目标收入（元）"], average: ["average earned (yuan)", "户均实际收入（元）"],
  earning: ["earning households", "有收入户数"], plans_area: ["planned against planted area (mu)", "规划面积与种植面积（亩）"],
  plans_income: ["target against average household income (yuan)", "户均目标收入与实际收入（元）"],
  none: ["none yet", "暂无"], public_note: ["Offers are public. Fills, commitments, households and plans are the office's: sign in "
    + "with the office token.", "在售批次公开。成交、承诺、农户与规划数据仅供办公室查看：请输入办公室令牌登录。"],
  token: ["office token", "办公室令牌"], sign_in: ["Sign in", "登录"], sign_out: ["Sign out", "退出"], wrong: ["not the office token", "令牌不正确"],
  live: ["live", "实时"], offline: ["reconnecting…", "正在重新连接…"], new_fill: ["new", "新"],
};

const state = { lang: document.documentElement.lang === "zh" ? "zh" : "en", office: false, view: null, offers: [], fresh: new Set(), source: null };
const zh = () => state.lang === "zh";
function t(key, values) {
  let text = TEXT[key][zh() ? 1 : 0];
  for (const [k, v] of Object.entries(values || {})) text = text.split("{" + k + "}").join(String(v));
  return text;
}
function county(name) {
  const key = (String(name).match(/^\s*([A-Za-z]+)/) || [null, name])[1].toLowerCase();
  return zh() ? (COUNTIES_ZH[key] || name) : name;
}
const product = (p) => (zh() ? PRODUCTS_ZH[p] || p : p.replace(/_/g, " "));
const basis = (b) => (zh() ? BASIS_ZH[b] || b : b.replace(/_/g, " "));
function yuan(fen) {
  const n = Number(fen) / 100;
  return n.toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
const num = (q) => String(q).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

// ---- DOM helpers (no innerHTML: every name from the log is text) -------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}
function table(headers, rows, numeric, rowAttrs) {
  const head = el("tr", {}, ...headers.map((h, i) => el("th", { text: h, class: numeric.includes(i) ? "num" : "" })));
  const body = rows.map((cells, r) => el("tr", rowAttrs ? rowAttrs(r) : {},
    ...cells.map((c, i) => el("td", { text: c, class: numeric.includes(i) ? "num" : "" }))));
  return el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}
function section(id, title, ...content) {
  return el("section", { id }, el("h2", { text: title }), ...content);
}

// ---- charts --------------------------------------------------------------------------------------------------
function hbars(name, caption, rows, series, format, grouped) {
  // rows: [{label, values: [..]}]; stacked unless grouped
  const bar = grouped ? 10 * series.length : 16, gap = 8, left = 230, width = 680, top = 24, right = 150;
  const total = (r) => (grouped ? Math.max(...r.values) : r.values.reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...rows.map(total));
  const height = top + rows.length * (bar + gap) + 24;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": caption, "data-chart": name });
  chart.append(svg("title", {}, caption));
  series.forEach(([label, color], i) => {
    chart.append(svg("rect", { x: left + i * 230, y: 4, width: 10, height: 10, fill: color }));
    chart.append(svg("text", { x: left + i * 230 + 14, y: 13, class: "legend" }, label));
  });
  const scale = (v) => ((width - left - right) * v) / max;
  rows.forEach((r, i) => {
    const y = top + i * (bar + gap);
    chart.append(svg("text", { x: left - 6, y: y + bar / 2 + 4, "text-anchor": "end", class: "label" }, r.label));
    let x = left;
    r.values.forEach((v, s) => {
      const w = scale(v), h = grouped ? bar / series.length : bar, yy = grouped ? y + s * h : y;
      const rect = svg("rect", { x: grouped ? left : x, y: yy, width: Math.max(w, v > 0 ? 1 : 0), height: h - (grouped ? 1 : 0), fill: series[s][1] });
      rect.append(svg("title", {}, `${r.label}: ${series[s][0]} ${format(v)}`));
      chart.append(rect);
      if (!grouped) x += w;
    });
    chart.append(svg("text", { x: left + scale(total(r)) + 6, y: y + bar / 2 + 4, class: "value" }, r.note || format(total(r))));
  });
  return el("figure", {}, chart, el("figcaption", { text: caption }));
}

function commitmentChart(c) {
  // x: each fill's as-of date; y: yuan per unit. Floor dashed, market line with dots, price paid as diamonds at the floor.
  const width = 680, height = 240, left = 56, right = 48, top = 16, bottom = 40;
  const fills = c.fills.filter((f) => f.price_as_of);
  const dates = [...new Set(fills.map((f) => f.price_as_of))].sort();
  const prices = [c.floor_price_fen, ...fills.map((f) => f.market_price_fen || 0), ...fills.map((f) => f.unit_price_fen)];
  const hi = Math.max(...prices) * 1.15, lo = Math.min(...prices) * 0.8;
  const x = (d) => left + (dates.length < 2 ? (width - left - right) / 2 : ((width - left - right) * dates.indexOf(d)) / (dates.length - 1));
  const y = (fen) => top + ((height - top - bottom) * (hi - fen)) / (hi - lo || 1);
  const name = "commitment-" + c.commitment_id;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "data-chart": name, "aria-label": t("chart_commitment") });
  chart.append(svg("title", {}, `${c.commitment_id}: ${t("chart_commitment")}`));
  for (const fen of [lo, (lo + hi) / 2, hi]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(fen), y2: y(fen), class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y(fen) + 4, "text-anchor": "end", class: "label" }, yuan(Math.round(fen))));
  }
  dates.forEach((d) => chart.append(svg("text", { x: x(d), y: height - bottom + 16, "text-anchor": "middle", class: "label" }, d)));
  chart.append(svg("line", { x1: left, x2: width - right, y1: y(c.floor_price_fen), y2: y(c.floor_price_fen), class: "floor" }));
  chart.append(svg("text", { x: width - right, y: y(c.floor_price_fen) - 4, "text-anchor": "end", class: "legend" }, `${t("floor")} ${yuan(c.floor_price_fen)}`));
  const market = fills.filter((f) => f.market_price_fen != null);
  const grades = [...new Set(market.map((f) => f.grade))].sort();
  grades.forEach((grade, g) => {  // one market line per grade: each grade has its own price
    const points = market.filter((f) => f.grade === grade);
    if (points.length > 1) {
      chart.append(svg("polyline", { points: points.map((f) => `${x(f.price_as_of)},${y(f.market_price_fen)}`).join(" "), class: "market grade-" + g }));
    }
    for (const f of points) {
      const dot = svg("circle", { cx: x(f.price_as_of), cy: y(f.market_price_fen), r: 4, class: "market-dot grade-" + g });
      dot.append(svg("title", {}, `${f.lot_id} ${f.price_as_of}: ${t("market")} ${t("grade")} ${grade} ${yuan(f.market_price_fen)}`));
      chart.append(dot);
    }
    const last = points[points.length - 1];
    const end = x(last.price_as_of) > width - right - 60;  // near the right edge: label above the point, ending there
    chart.append(svg("text", { x: x(last.price_as_of) + (end ? 0 : 8), y: y(last.market_price_fen) + (end ? -8 : 4),
      "text-anchor": end ? "end" : "start", class: "legend" }, `${t("grade")} ${grade}`));
  });
  for (const f of fills) {
    const cx = x(f.price_as_of), cy = y(f.unit_price_fen), s = 6;
    const mark = f.price_basis === "floor"
      ? svg("polygon", { points: `${cx},${cy - s} ${cx + s},${cy} ${cx},${cy + s} ${cx - s},${cy}`, class: "paid-floor" })
      : svg("circle", { cx, cy, r: 3, class: "paid-market" });
    mark.append(svg("title", {}, `${f.lot_id}: ${t("paid")} ${yuan(f.unit_price_fen)} (${basis(f.price_basis)})`));
    chart.append(mark);
  }
  const legend = [[t("market"), "market-dot"], [t("paid") + " · " + basis("floor"), "paid-floor"]];
  legend.forEach(([label, cls], i) => {
    chart.append(svg("circle", { cx: left + 10 + i * 170, cy: height - 8, r: 4, class: cls }));
    chart.append(svg("text", { x: left + 18 + i * 170, y: height - 4, class: "legend" }, label));
  });
  return el("figure", {}, chart, el("figcaption", { text: `${c.commitment_id}: ${t("chart_commitment")}` }));
}

// ---- sections ------------------------------------------------------------------------------------------------
function offersSection() {
  const rows = state.offers.map((o) => [o.lot_id, product(o.product), o.grade, o.cooperative_id, `${county(o.county)} ${o.township}`,
    num(o.quantity_left), o.available_from, o.expires_on]);
  return section("offers", t("offers"), rows.length ? table([t("lot"), t("product"), t("grade"), t("cooperative"), t("township"),
    t("left"), t("from"), t("until")], rows, [5]) : el("p", { class: "note", text: t("none") }));
}

function fillsSection(view) {
  const fills = [...view.fills].reverse();
  const rows = fills.map((f) => [f.fill_id.slice(0, 8), f.buyer_id, f.lot_id, product(f.product), f.grade, num(f.quantity), yuan(f.unit_price_fen),
    basis(f.price_basis), yuan(f.revenue_fen), f.outlet_id, f.committed_at.slice(0, 16).replace("T", " ")]);
  return section("fills", t("fills"), rows.length ? table(["#", t("buyer"), t("lot"), t("product"), t("grade"), t("quantity"),
    t("price"), t("basis"), t("revenue"), t("outlet"), t("at")], rows, [5, 6, 8],
    (r) => ({ "data-fill-id": fills[r].fill_id, "data-seq": fills[r].seq, class: state.fresh.has(fills[r].seq) ? "new" : "" }))
    : el("p", { class: "note", text: t("none") }));
}

function commitmentsSection(view) {
  const parts = view.commitments.map((c) => el("div", { class: "commitment" },
    el("h3", { text: c.commitment_id }),
    el("p", { text: t("commitment_note", { buyer: c.buyer_id, product: product(c.product), floor: yuan(c.floor_price_fen), market: c.reference_market,
      from: c.valid_from, to: c.valid_to, n: c.fills.length, a: c.activations, above: yuan(c.above_market_fen) }) }),
    c.fills.length ? commitmentChart(c) : el("p", { class: "note", text: t("none") }),
    c.fills.length ? table([t("lot"), t("cooperative"), t("grade"), t("quantity"), t("from"), t("market"), t("floor"), t("paid"), t("basis"), t("revenue")],
      c.fills.map((f) => [f.lot_id, f.cooperative_id, f.grade, num(f.quantity), f.price_as_of || "", f.market_price_fen == null ? "" : yuan(f.market_price_fen),
        yuan(f.floor_price_fen), yuan(f.unit_price_fen), basis(f.price_basis), yuan(f.revenue_fen)]), [3, 5, 6, 7, 9]) : null));
  return section("commitments", t("commitments"), ...(parts.length ? parts : [el("p", { class: "note", text: t("none") })]));
}

function coverageSection(view) {
  const villages = view.villages;
  if (!villages.length) return section("coverage", t("coverage"), el("p", { class: "note", text: t("none") }));
  const rows = villages.map((v) => ({ label: v.village, values: [v.with_income, v.without_income], note: `${v.with_income}/${v.registered_poor}` }));
  return section("coverage", t("coverage"),
    hbars("coverage", t("coverage"), rows, [[t("with_income"), "#2f9e44"], [t("without_income"), "#e03131"]], String, false),
    table([t("county"), t("township"), t("village"), t("households"), t("registered_poor"), t("with_income"), t("without_income"), t("paid_total")],
      villages.map((v) => [county(v.county), v.township, v.village, v.households, v.registered_poor, v.with_income, v.without_income, yuan(v.paid_fen)]),
      [3, 4, 5, 6, 7], (r) => (villages[r].without_income ? { class: "gap" } : {})));
}

function plansSection(view) {
  const plans = view.plans;
  if (!plans.length) return section("plans", t("plans"), el("p", { class: "note", text: t("none") }));
  const label = (p) => `${p.township} ${product(p.product)}`;
  return section("plans", t("plans"), el("div", { class: "pair" },
    hbars("plans-area", t("plans_area"), plans.map((p) => ({ label: label(p), values: [Number(p.planned_area_mu), Number(p.planted_area_mu)],
      note: `${num(p.planted_area_mu)} / ${num(p.planned_area_mu)}` })), [[t("planned"), "#9ecae1"], [t("planted"), "#3182bd"]], num, true),
    hbars("plans-income", t("plans_income"), plans.map((p) => ({ label: label(p), values: [p.target_household_income_fen, p.average_household_income_fen],
      note: `${yuan(p.average_household_income_fen)} / ${yuan(p.target_household_income_fen)}` })), [[t("target"), "#fdae6b"], [t("average"), "#e6550d"]], yuan, true)),
    table([t("plan"), t("county"), t("township"), t("product"), t("planned"), t("planted"), t("target"), t("average"), t("earning")],
      plans.map((p) => [p.plan_id, county(p.county), p.township, product(p.product), num(p.planned_area_mu), num(p.planted_area_mu),
        yuan(p.target_household_income_fen), yuan(p.average_household_income_fen), p.earning_households]), [4, 5, 6, 7, 8]));
}

function pairingsSection(view) {
  const pairings = view.pairings || [];
  const projects = view.projects || [];
  const helped = (p) => (p.helped_township ? `${p.helped}, ${p.helped_township}` : p.helped);
  return section("pairings", t("pairings"),
    pairings.length ? table([t("pairing"), t("kind"), t("helper"), t("helped"), t("team"), t("support"), t("deliveries"), t("registered_poor"),
      t("with_income"), t("paid_total")],
      pairings.map((p) => [p.pairing_id, p.kind, p.helper, helped(p), p.team, yuan(p.support_fen), p.deliveries, p.registered_poor, p.with_income,
        yuan(p.paid_fen)]), [5, 6, 7, 8, 9], (r) => ({ "data-pairing-id": pairings[r].pairing_id }))
      : el("p", { class: "note", text: t("none") }),
    el("h3", { text: t("projects") }),
    projects.length ? table([t("project"), t("owner"), t("due"), t("reached"), t("open_milestones")],
      projects.map((p) => [p.name, p.owner_team, p.due_on, `${p.reached}/${p.milestones}`, p.open_milestones || "-"]), [3],
      (r) => ({ "data-project-id": projects[r].project_id }))
      : el("p", { class: "note", text: t("none") }));
}

function signInForm() {
  const input = el("input", { type: "password", name: "token", autocomplete: "off", "aria-label": t("token"), placeholder: t("token") });
  const message = el("span", { class: "note" });
  const form = el("form", { id: "sign-in" }, input, el("button", { type: "submit", text: t("sign_in") }), message);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await signIn(input.value)) start(); else message.textContent = t("wrong");
  });
  return section("office", t("sign_in"), el("p", { class: "note", text: t("public_note") }), form);
}

function header() {
  const counties = [...new Set((state.view ? state.view.villages : state.offers).map((v) => v.county))];
  const top = document.getElementById("top");
  const title = t("title", { county: counties.length === 1 ? county(counties[0]) : (zh() ? "沿河" : "Yanhe") });
  document.title = title;
  const langs = el("nav", { class: "langs" }, ...["en", "zh"].map((l) => {
    const b = el("button", { type: "button", "data-lang": l, class: l === state.lang ? "on" : "", text: l === "en" ? "English" : "中文" });
    b.addEventListener("click", () => { state.lang = l; history.replaceState(null, "", "?lang=" + l); render(); });
    return b;
  }));
  const status = el("span", { id: "live", class: "live", text: state.source && state.source.readyState === 1 ? t("live") : t("offline") });
  const out = state.office ? el("button", { type: "button", id: "sign-out", text: t("sign_out") }) : null;
  if (out) out.addEventListener("click", async () => { await fetch("/v1/office/session", { method: "DELETE" }); start(); });
  top.replaceChildren(el("h1", { text: title }), el("p", { class: "subtitle", text: t("subtitle") }), el("div", { class: "bar" }, langs, status, out));
}

function render() {
  document.documentElement.lang = state.lang;
  document.body.dataset.lang = state.lang;
  header();
  const app = document.getElementById("app");
  const parts = state.view
    ? [offersSection(), fillsSection(state.view), commitmentsSection(state.view), coverageSection(state.view), plansSection(state.view),
      pairingsSection(state.view)]
    : [offersSection(), signInForm()];
  app.replaceChildren(...parts);
  const charts = app.querySelectorAll("svg[data-chart]");
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.chartsDrawn = String([...charts].filter((c) => c.querySelector("rect, circle, polygon, polyline")).length);
  document.body.dataset.fills = String(state.view ? state.view.fills.length : 0);
}

// ---- data and live updates -----------------------------------------------------------------------------------
async function json(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}
async function signIn(token) {
  const response = await fetch("/v1/office/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
  return response.ok;
}
async function load() {
  if (state.office) state.view = await json("/v1/office"); else state.view = null;
  state.offers = state.view ? state.view.offers : (await json("/v1/offers")).offers;
  render();
}
let pending = null;
function refresh() {
  clearTimeout(pending);
  pending = setTimeout(() => load().catch(fail), 300);
}
function listen() {
  if (state.source) state.source.close();
  const source = state.office ? new EventSource("/v1/office/stream?after=" + state.view.last_seq) : new EventSource("/v1/offers/stream");
  state.source = source;
  const live = (on) => { const node = document.getElementById("live"); if (node) node.textContent = on ? t("live") : t("offline"); };
  source.onopen = () => live(true);
  source.onerror = () => live(false);
  source.addEventListener("offer", refresh);
  source.addEventListener("office", refresh);
  source.addEventListener("fill", (e) => {
    const fill = JSON.parse(e.data);
    if (!state.view || state.view.fills.some((f) => f.seq === fill.seq)) return;
    state.view.fills.push(fill);
    state.view.last_seq = Math.max(state.view.last_seq, fill.seq);
    state.fresh.add(fill.seq);
    render();
    document.body.dataset.lastFill = fill.fill_id;
    refresh();
  });
}
async function start() {
  const match = location.hash.match(/^#office=(.+)$/);
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    await signIn(decodeURIComponent(match[1]));
  }
  state.office = (await json("/v1/office/session")).office;
  await load();
  listen();
  document.body.dataset.ready = "1";
}
document.addEventListener("DOMContentLoaded", () => start().catch(fail));
