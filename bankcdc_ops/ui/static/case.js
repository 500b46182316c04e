// One fraud case: the masked card and account, the transactions in its window, why it was flagged.
"use strict";

const id = new URLSearchParams(location.search).get("id") || "";

function panel(node, title, fields) {
  node.replaceChildren(el("dt", {class: "title", text: title}));
  for (const [label, value] of fields) {
    node.append(el("dt", {text: label}), el("dd", {text: value === null || value === undefined ? "–" : String(value)}));
  }
}

function timeline(transactions) {
  const byStatus = {};
  for (const t of transactions) (byStatus[t.status] = byStatus[t.status] || []).push(t);
  const colours = {approved: "#16a34a", declined: "#dc2626", reversed: "#7c3aed", pending: "#d97706"};
  const traces = Object.entries(byStatus).map(([status, rows]) => ({
    type: "scatter", mode: "markers", name: status, x: rows.map(r => r.created_at.replace("+00:00", "")), y: rows.map(r => Number(r.amount)),
    text: rows.map(r => `#${r.transaction_id} ${r.txn_type} at ${r.terminal_type || "?"} ${r.merchant_name || ""}`),
    marker: {size: rows.map(r => r.evidence ? 13 : 7), color: colours[status] || "#64748b",
             line: {width: rows.map(r => r.evidence ? 2 : 0), color: "#1e293b"}},
  }));
  const box = document.getElementById("timeline");
  box.dataset.points = String(transactions.length);
  Plotly.react(box, traces, {...PLOT_LAYOUT, width: box.clientWidth || undefined, height: 240, yaxis: {title: {text: "amount"}, rangemode: "tozero"},
                             xaxis: {type: "date"}}, PLOT_CONFIG);
}

async function load() {
  try {
    const data = await getJson(`case/data?id=${encodeURIComponent(id)}`);
    const c = data.case;
    document.title = `${c.scenario} on card ${c.card_id} · bank-cdc`;
    document.getElementById("title").textContent = `${c.scenario.replaceAll("_", " ")} on card ${c.card_id}`;
    document.getElementById("reason").textContent = c.flag_reason;
    document.body.dataset.detectionId = c.detection_id;
    document.body.dataset.transactionIds = c.transaction_ids.join(",");
    const card = data.card || {};
    panel(document.getElementById("card"), "Card", [
      ["card (pseudonymous key)", card.card_id ?? c.card_id], ["number", card.pan_last4 ? `•••• ${card.pan_last4}` : null],
      ["PAN token", card.pan_token], ["type", card.card_type], ["status", card.status], ["closed at", when(card.closed_at)]]);
    const account = data.account || {};
    panel(document.getElementById("account"), "Account", [
      ["account (pseudonymous key)", account.account_id], ["customer (pseudonymous key)", account.customer_id],
      ["IBAN", account.iban_masked], ["currency", account.currency], ["type", account.account_type],
      ["status", account.status]]);
    panel(document.getElementById("window"), "Window", [
      ["from", when(c.window_start)], ["to", when(c.window_end)], ["evidence", `${c.transaction_ids.length} transactions`],
      ["case id", c.detection_id]]);
    document.querySelector("#transactions tbody").replaceChildren(...data.transactions.map(t =>
      el("tr", {"data-transaction-id": String(t.transaction_id), "data-evidence": t.evidence ? "1" : "0",
                class: t.evidence ? "evidence" : null},
        el("td", {text: when(t.created_at)}), el("td", {text: String(t.transaction_id)}), el("td", {text: t.txn_type}),
        el("td", {text: `${t.amount} ${t.currency}`}),
        el("td", {text: t.decline_reason ? `${t.status} (${t.decline_reason})` : t.status}),
        el("td", {text: `${t.terminal_id} ${t.terminal_type || ""}`}),
        el("td", {text: [t.merchant_name, t.city].filter(Boolean).join(", ")}),
        el("td", {text: t.evidence ? "yes" : ""}))));
    timeline(data.transactions);
    document.body.dataset.loaded = "case";
  } catch (error) {
    showError(error);
  }
}

load();
