// The customer page: reads the customer token from the link's fragment, then shows
// consumption (days of a month or months of a year), the TOU split and the bills. A bar
// drills down: a month's bar to its days, a day's bar to its load-profile intervals.
"use strict";

const TEXT = {
  vi: {
    title: "Tiêu thụ điện của bạn", byDay: "Theo ngày", byMonth: "Theo tháng",
    consumption: "Điện năng tiêu thụ", total: "Tổng", touTitle: "Theo khung giờ",
    touNone: "Không có số liệu theo khung giờ cho khoảng thời gian này.", bills: "Hóa đơn",
    period: "Kỳ", amount: "Số tiền (đ)", state: "Trạng thái", document: "Hóa đơn",
    billsNone: "Chưa có hóa đơn.", offpeak: "Thấp điểm", normal: "Bình thường", peak: "Cao điểm",
    energy: "Điện năng", paid: "Đã thanh toán", unpaid: "Chưa thanh toán", customer: "Mã khách hàng",
    month: "Tháng", year: "Năm", day: "Ngày", switchTo: "English",
    noToken: "Liên kết không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại qua Cổng dịch vụ công.",
    failed: "Không tải được dữ liệu", noDocument: "Hóa đơn chưa sẵn sàng",
  },
  en: {
    title: "Your electricity use", byDay: "By day", byMonth: "By month",
    consumption: "Energy used", total: "Total", touTitle: "By time of use",
    touNone: "No time-of-use split for this period.", bills: "Bills",
    period: "Period", amount: "Amount (VND)", state: "Status", document: "Invoice",
    billsNone: "No bills yet.", offpeak: "Off-peak", normal: "Normal", peak: "Peak",
    energy: "Energy", paid: "Paid", unpaid: "Unpaid", customer: "Customer code",
    month: "Month", year: "Year", day: "Day", switchTo: "Tiếng Việt",
    noToken: "This link is invalid or has expired. Please sign in again through the public-service portal.",
    failed: "Could not load the data", noDocument: "The invoice is not ready yet",
  },
};
const TOU = ["offpeak", "normal", "peak"];
const state = { lang: localStorage.getItem("amr-lang") || "vi", view: "month", year: 0, month: 0, day: 0,
                token: null, code: null, usage: null, bills: [] };

function t(key) { return TEXT[state.lang][key]; }
function $(id) { return document.getElementById(id); }
function kwh(wh) {
  const digits = state.view === "day" ? 3 : 1;  // an interval is a few hundred Wh
  return new Intl.NumberFormat(state.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: digits })
    .format(wh / 1000);
}
function vnd(amount) { return new Intl.NumberFormat(state.lang === "vi" ? "vi-VN" : "en-GB").format(amount); }
function pad(n) { return String(n).padStart(2, "0"); }

async function api(path) {
  const reply = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  if (reply.status === 401) { throw new Error("unauthenticated"); }
  if (!reply.ok) {
    let message = reply.statusText;
    try { message = (await reply.json()).message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return reply;
}

function showMessage(text) { const m = $("message"); m.textContent = text; m.hidden = false; }

function takeToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("amr-token", decodeURIComponent(match[1]));
    // Keep the token out of the address bar, history and any shared screenshot.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("amr-token");
}

function spanOf() {
  if (state.view === "day") {
    const date = `${state.year}-${pad(state.month)}-${pad(state.day)}`;
    return { from: date, to: date, granularity: "interval",
             label: `${t("day")} ${pad(state.day)}/${pad(state.month)}/${state.year}` };
  }
  if (state.view === "month") {
    const last = new Date(Date.UTC(state.year, state.month, 0)).getUTCDate();
    return { from: `${state.year}-${pad(state.month)}-01`, to: `${state.year}-${pad(state.month)}-${pad(last)}`,
             granularity: "day", label: `${t("month")} ${pad(state.month)}/${state.year}` };
  }
  return { from: `${state.year}-01-01`, to: `${state.year}-12-31`, granularity: "month",
           label: `${t("year")} ${state.year}` };
}

async function loadUsage() {
  const span = spanOf();
  $("span-label").textContent = span.label;
  const query = new URLSearchParams({ from: span.from, to: span.to, granularity: span.granularity });
  state.usage = await (await api(`/v1/customers/${state.code}/consumption?${query}`)).json();
  drawUsage();
  document.body.dataset.loaded = `${span.from}/${span.to}`;  // lets tests wait for the data
}

function slots() {
  // Every day of the month (or month of the year), with the points that exist; a day's
  // intervals as published, labelled by their local end (HH:MM).
  if (state.view === "day") { return state.usage.points.map((p) => ({ label: p.ts.slice(11, 16), point: p })); }
  const byKey = new Map(state.usage.points.map((p) => [p.date || p.period, p]));
  const out = [];
  if (state.view === "month") {
    const last = new Date(Date.UTC(state.year, state.month, 0)).getUTCDate();
    for (let d = 1; d <= last; d++) {
      out.push({ label: String(d), point: byKey.get(`${state.year}-${pad(state.month)}-${pad(d)}`) });
    }
  } else {
    for (let m = 1; m <= 12; m++) { out.push({ label: String(m), point: byKey.get(`${state.year}-${pad(m)}`) }); }
  }
  return out;
}

function svg(name, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) { node.setAttribute(k, v); }
  return node;
}

function drawUsage() {
  const usage = state.usage;
  $("total").textContent = kwh(usage.total.energy_wh);
  const items = slots();
  const width = 720, height = 280, left = 56, bottom = 28, top = 10;
  const max = Math.max(1, ...items.map((s) => (s.point ? s.point.energy_wh : 0)));
  const step = (width - left) / items.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, "aria-label": t("consumption") });
  const scale = (wh) => ((height - bottom - top) * wh) / max;
  for (const frac of [0, 0.5, 1]) {
    const y = height - bottom - scale(max * frac);
    chart.appendChild(svg("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e2e8f0" }));
    const label = svg("text", { x: left - 4, y: y + 4, "text-anchor": "end", "font-size": 17, fill: "#4a5568" });
    label.textContent = kwh(max * frac);
    chart.appendChild(label);
  }
  items.forEach((slot, i) => {
    const x = left + i * step + step * 0.15, w = step * 0.7;
    if (slot.point) {
      const p = slot.point;
      let y = height - bottom;
      const parts = p.tou ? TOU.map((k) => [k, p.tou[k + "_wh"]]) : [["total", p.energy_wh]];
      for (const [kind, wh] of parts) {
        const h = scale(wh);
        y -= h;
        const drill = state.view === "day" ? "" : " drill";
        const bar = svg("rect", { x, y, width: w, height: Math.max(h, 0), class: `bar bar-${kind}${drill}`,
                                  fill: { offpeak: "#38a169", normal: "#3182ce", peak: "#e53e3e", total: "#4a6fa5" }[kind] });
        const tip = svg("title", {});
        tip.textContent = `${slot.label}: ${kwh(p.energy_wh)} kWh`;
        bar.appendChild(tip);
        if (drill) { bar.addEventListener("click", () => drillInto(i + 1)); }
        chart.appendChild(bar);
      }
    }
    const every = items.length > 40 ? 8 : 5;  // intervals: a label every 2 or 4 hours
    if (items.length <= 12 || i % every === 0 || (items.length <= 31 && i === items.length - 1)) {
      const label = svg("text", { x: x + w / 2, y: height - 8, "text-anchor": "middle", "font-size": 17, fill: "#4a5568" });
      label.textContent = slot.label;
      chart.appendChild(label);
    }
  });
  $("chart").replaceChildren(chart);
  const legend = usage.total.tou ? TOU : ["total"];
  $("legend").replaceChildren(...legend.map((k) => {
    const li = document.createElement("li");
    li.className = `sw-${k}`;
    li.textContent = k === "total" ? t("energy") : t(k);
    return li;
  }));
  const rows = [];
  if (usage.total.tou) {
    const all = Math.max(1, usage.total.energy_wh);
    for (const k of TOU) {
      const tr = document.createElement("tr");
      const wh = usage.total.tou[k + "_wh"];
      tr.innerHTML = "<td></td><td class=num></td><td class=num></td>";
      tr.children[0].textContent = t(k);
      tr.children[1].textContent = `${kwh(wh)} kWh`;
      tr.children[2].textContent = `${Math.round((100 * wh) / all)} %`;
      rows.push(tr);
    }
  }
  $("tou").tBodies[0].replaceChildren(...rows);
  $("tou").hidden = rows.length === 0;
  $("tou-none").hidden = rows.length > 0;
  $("view-month").classList.toggle("active", state.view === "month");
  $("view-year").classList.toggle("active", state.view === "year");
}

async function openDocument(event) {
  event.preventDefault();
  const link = event.currentTarget;
  try {
    const blob = await (await api(link.dataset.href)).blob();
    window.open(URL.createObjectURL(blob), "_blank", "noopener");
  } catch (error) {
    showMessage(`${t("noDocument")}: ${error.message}`);
  }
}

function drawBills() {
  const body = $("bills").tBodies[0];
  body.replaceChildren(...state.bills.map((bill) => {
    const tr = document.createElement("tr");
    tr.className = "bill";
    tr.innerHTML = "<td></td><td class=num></td><td class=num></td><td></td><td><a href=#>PDF</a></td>";
    tr.children[0].textContent = bill.period;
    tr.children[1].textContent = bill.kwh;
    tr.children[2].textContent = vnd(bill.total_amount);
    tr.children[3].textContent = bill.paid ? t("paid") : t("unpaid");
    tr.children[3].className = bill.paid ? "paid" : "unpaid";
    const link = tr.querySelector("a");
    link.dataset.href = bill.documents.pdf;
    link.className = "pdf";
    link.addEventListener("click", openDocument);
    return tr;
  }));
  $("bills").hidden = state.bills.length === 0;
  $("bills-none").hidden = state.bills.length > 0;
}

function translate() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) { node.textContent = t(node.dataset.i18n); }
  $("lang").textContent = t("switchTo");
  if (state.code) { $("customer").textContent = `${t("customer")}: ${state.code}`; }
  if (state.usage) { $("span-label").textContent = spanOf().label; drawUsage(); }
  drawBills();
}

function drillInto(n) {
  // n is the bar's day of the month (month view) or month of the year (year view)
  if (state.view === "month") { state.view = "day"; state.day = n; }
  else { state.view = "month"; state.month = n; }
  loadUsage().catch(fail);
}

function move(delta) {
  if (state.view === "year") { state.year += delta; }
  else if (state.view === "day") {
    const next = new Date(Date.UTC(state.year, state.month - 1, state.day + delta));
    state.year = next.getUTCFullYear();
    state.month = next.getUTCMonth() + 1;
    state.day = next.getUTCDate();
  }
  else {
    state.month += delta;
    if (state.month < 1) { state.month = 12; state.year -= 1; }
    if (state.month > 12) { state.month = 1; state.year += 1; }
  }
  loadUsage().catch(fail);
}

function fail(error) {
  showMessage(error.message === "unauthenticated" ? t("noToken") : `${t("failed")}: ${error.message}`);
}

async function start() {
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("amr-lang", state.lang);
    translate();
  });
  $("prev").addEventListener("click", () => move(-1));
  $("next").addEventListener("click", () => move(1));
  $("view-month").addEventListener("click", () => { state.view = "month"; loadUsage().catch(fail); });
  $("view-year").addEventListener("click", () => { state.view = "year"; loadUsage().catch(fail); });
  translate();
  state.token = takeToken();
  if (!state.token) { showMessage(t("noToken")); return; }
  try {
    state.code = (await (await api("/v1/me")).json()).customer_code;
    state.bills = (await (await api(`/v1/customers/${state.code}/bills`)).json()).bills;
    // Open on the month asked for, else the latest bill's month, else this month.
    const asked = new URLSearchParams(location.search).get("month");
    const latest = asked || (state.bills[0] && state.bills[0].period) || new Date().toISOString().slice(0, 7);
    state.year = Number(latest.slice(0, 4));
    state.month = Number(latest.slice(5, 7));
    $("usage").hidden = false;
    $("bills-section").hidden = false;
    translate();
    await loadUsage();
  } catch (error) {
    fail(error);
  }
}

document.addEventListener("DOMContentLoaded", start);
