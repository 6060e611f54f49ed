// paydesk's browser customer display: the client side of the PintoAndroid
// display protocol, as the Android app speaks it. It renders every screen the
// server sends and sends the customer's choices back. The server owns the
// flow; this page keeps only the transactionId the server issued (copied
// from every message, as the app does) and the session id it reconnects
// with.
"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var state = { ws: null, flow: "", currency: "", min: 10, max: 300, amount: 0, keypad: "", screen: "", screenTimer: null, payTimer: null };
  var SESSION_KEY = "paydesk-display-session";
  var METHOD_NAMES = { DEBIT_CARD: "Debit card", CREDIT_CARD: "Credit card", PAY_BY_BANK: "Pay by bank", MPESA: "M-Pesa", QR_CODE: "QR code", BNPL: "Buy now, pay later" };

  function $(id) { return document.getElementById(id); }

  function socketURL() {
    var u = new URL(location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.pathname = "/ws";
    u.search = "";
    var q = new URLSearchParams();
    if (params.get("token")) q.set("token", params.get("token"));
    if (params.get("device")) q.set("device", params.get("device"));
    var session = "";
    try { session = sessionStorage.getItem(SESSION_KEY) || ""; } catch (e) { /* private mode */ }
    if (session) q.set("session", session);
    u.search = q.toString();
    return u.toString();
  }

  function setStatus(conn, text) {
    document.body.dataset.connection = conn;
    $("status").textContent = text;
  }

  function connect() {
    setStatus("connecting", "connecting…");
    var ws = new WebSocket(socketURL());
    state.ws = ws;
    ws.onopen = function () {
      setStatus("open", "connected");
      // The app asks for a screen if none arrives within 5 s.
      clearTimeout(state.screenTimer);
      state.screenTimer = setTimeout(function () { if (!state.screen) send("RESET", {}, newID()); }, 5000);
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { toast("Invalid message from the kiosk"); return; }
      receive(msg);
    };
    ws.onclose = function () {
      setStatus("closed", "reconnecting…");
      state.ws = null;
      // A fixed 5 s between attempts, like the Android app.
      setTimeout(connect, 5000);
    };
  }

  function newID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function send(screen, data, txn) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) { toast("Not connected to the kiosk"); return; }
    state.ws.send(JSON.stringify({ messageType: "USER_ACTION", screen: screen, data: data, transactionId: txn || state.flow, timestamp: Date.now() }));
  }

  // deviceName is this display's identity for the server: ?device=, else
  // a name kept in this browser, so a reload or a reconnect resumes.
  function deviceName() {
    if (params.get("device")) return params.get("device");
    var key = "paydesk-display-device", name = "";
    try { name = localStorage.getItem(key) || ""; } catch (e) { /* private mode */ }
    if (!name) {
      name = "browser-" + newID().slice(0, 8);
      try { localStorage.setItem(key, name); } catch (e) { /* ignore */ }
    }
    return name;
  }

  function receive(msg) {
    var data = msg.data || {};
    if (msg.messageType === "SCREEN_CHANGE" && msg.screen === "INFO_SCREEN") {
      // A request for this device's identity, like the app answers it:
      // no screen change, and the flow's transactionId is kept.
      if (data.requestType === "DEVICE_INFO" && state.ws) {
        state.ws.send(JSON.stringify({ messageType: "DEVICE_INFO", screen: "DEVICE_SERIAL",
          data: { deviceSerialNumber: deviceName() }, transactionId: msg.transactionId, timestamp: Date.now() }));
      }
      return;
    }
    if (typeof msg.transactionId === "string" && msg.transactionId) state.flow = msg.transactionId;
    switch (msg.messageType) {
      case "DEVICE_INFO":
        if (typeof data.sessionId === "string") { try { sessionStorage.setItem(SESSION_KEY, data.sessionId); } catch (e) { /* ignore */ } }
        if (Number.isInteger(data.minTransactionLimit)) state.min = data.minTransactionLimit;
        if (Number.isInteger(data.maxTransactionLimit)) state.max = data.maxTransactionLimit;
        return;
      case "SCREEN_CHANGE":
        show(msg.screen, data);
        return;
      case "ERROR":
        if (data.errorCode === "TIMEOUT") { show("TIMEOUT", data); return; }
        toast(data.errorMessage || "Something went wrong");
        return;
      default:
        return; // STATUS_UPDATE and others: nothing to draw
    }
  }

  function money(n) { return (state.currency || "") + n; }

  function button(label, cls, onClick) {
    var b = document.createElement("button");
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  var render = {
    AMOUNT_SELECT: function (d) {
      state.currency = d.currency || state.currency;
      state.amount = 0;
      var grid = $("amounts");
      grid.textContent = "";
      (d.amounts || []).forEach(function (n) {
        var b = button(money(n), "", function () {
          state.amount = n;
          send("AMOUNT_SELECT", { selectedAmount: n, selectionMethod: "PRESET_BUTTON" });
        });
        b.dataset.amount = String(n);
        grid.appendChild(b);
      });
      $("other").hidden = d.showOtherOption === false;
    },
    KEYPAD: function (d) {
      state.currency = d.currency || state.currency;
      if (Number.isInteger(d.minAmount)) state.min = d.minAmount;
      if (Number.isInteger(d.maxAmount)) state.max = d.maxAmount;
      state.keypad = "";
      $("keypad-currency").textContent = state.currency;
      $("keypad-value").textContent = "0";
      $("keypad-range").textContent = "Between " + money(state.min) + " and " + money(state.max);
    },
    PAYMENT_METHOD: function (d) {
      state.currency = d.currency || state.currency;
      $("method-amount").textContent = state.amount ? money(state.amount) : "";
      var grid = $("methods");
      grid.textContent = "";
      (d.methods || []).forEach(function (m) {
        var b = button(METHOD_NAMES[m] || m, "", function () { send("PAYMENT_METHOD", { selectionMethod: m }); });
        b.dataset.method = m;
        grid.appendChild(b);
      });
      $("method-cancel").hidden = d.allowCancel === false;
    },
    PROCESSING: function (d) {
      // A payment the customer makes on their own phone (M-Pesa paybill
      // or till): show where to pay, large enough to type from.
      var number = d.businessNumber !== undefined ? d.businessNumber : d.tillNumber;
      var own = number !== undefined && number !== null;
      $("processing-wait").hidden = own;
      $("pay").hidden = !own;
      clearInterval(state.payTimer);
      if (!own) return;
      var till = d.payTo === "TILL";
      $("pay-menu").textContent = till ? "Buy Goods and Services" : "Pay Bill";
      $("pay-number-label").textContent = till ? "Till number" : "Business number";
      $("pay-number").textContent = String(number);
      $("pay-account-row").hidden = till;
      $("pay-account").textContent = d.accountNumber || "";
      $("pay-amount").textContent = (d.currency || state.currency || "") + " " + d.amount;
      var until = Number.isInteger(d.expiresIn) ? Date.now() + d.expiresIn * 1000 : 0;
      var tick = function () {
        if (!until) { $("pay-left").textContent = ""; return; }
        var left = Math.max(0, Math.round((until - Date.now()) / 1000));
        $("pay-left").textContent = "(" + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left)";
      };
      tick();
      state.payTimer = setInterval(tick, 1000);
    },
    SUCCESS: function (d) { $("success-receipt").textContent = d.showReceipt ? "Your receipt will be printed." : ""; },
    FAILED: function (d) {
      $("failed-message").textContent = d.errorMessage || "The payment did not go through.";
      $("failed-code").textContent = d.errorCode || "";
    },
    LIMIT_ERROR: function (d) {
      var c = d.currency || state.currency;
      $("limit-message").textContent = "The daily limit is " + c + d.limit + "; " + c + d.remaining + " remains today.";
    },
    DEVICE_ERROR: function (d) {
      $("device-message").textContent = d.errorMessage || "";
      $("device-code").textContent = d.errorCode || "";
    }
  };

  function show(screen, data) {
    var el = $("screen-" + screen);
    if (!el) { toast("Unknown screen " + screen); return; }
    if (screen !== "PROCESSING") clearInterval(state.payTimer);
    if (render[screen]) render[screen](data);
    var active = document.querySelectorAll(".screen.active");
    for (var i = 0; i < active.length; i++) active[i].classList.remove("active");
    el.classList.add("active");
    state.screen = screen;
    document.body.dataset.screen = screen;
    hideToast();
  }

  var toastTimer = null;
  function toast(text) {
    var t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, 4000);
  }
  function hideToast() { $("toast").hidden = true; }

  // The server answers CANCEL with the amount screen (or PROCESSING while
  // a payment is in flight): a RESET after it would only repeat it.
  function cancel() { send("CANCEL", null); }

  function keypadSetup() {
    var pad = $("keypad");
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "C", "0", "⌫"].forEach(function (k) {
      pad.appendChild(button(k, "", function () {
        if (k === "C") state.keypad = "";
        else if (k === "⌫") state.keypad = state.keypad.slice(0, -1);
        else if (state.keypad.length < 7) state.keypad = (state.keypad + k).replace(/^0+/, "");
        $("keypad-value").textContent = state.keypad || "0";
      }));
    });
    $("keypad-ok").addEventListener("click", function () {
      var n = parseInt(state.keypad || "0", 10);
      if (n < state.min || n > state.max) { toast("Choose between " + money(state.min) + " and " + money(state.max)); return; }
      state.amount = n;
      send("KEYPAD", { selectedAmount: n, selectionMethod: "KEYPAD" });
    });
    $("keypad-cancel").addEventListener("click", cancel);
  }

  $("other").addEventListener("click", function () { send("AMOUNT_SELECT", { selectedAmount: -1, selectionMethod: "OTHER" }); });
  $("method-cancel").addEventListener("click", cancel);
  $("pay-cancel").addEventListener("click", cancel);
  var resets = document.querySelectorAll("[data-action=reset]");
  for (var i = 0; i < resets.length; i++) resets[i].addEventListener("click", function () { send("RESET", {}, newID()); });
  var answers = document.querySelectorAll("[data-receipt]");
  for (var j = 0; j < answers.length; j++) {
    answers[j].addEventListener("click", function (ev) {
      send("RECEIPT_RESPONSE", { selectionMethod: ev.currentTarget.dataset.receipt });
    });
  }
  keypadSetup();
  connect();
})();
