// Compiled from chat.ts and generated/ChatHub.ts by esbuild (`npm run build:web` in examples/js).
// Do not edit: edit chat.ts and rebuild. `npm run check:web` fails when this file is stale.
"use strict";
(() => {
  // generated/ChatHub.ts
  function createChatHubProxy(connection2) {
    return {
      join: (room, name) => connection2.invoke("Join", room, name),
      leave: (room) => connection2.invoke("Leave", room),
      sendMessage: (room, text) => connection2.invoke("SendMessage", room, text)
    };
  }
  function registerChatClient(connection2, receiver) {
    const handlers = [
      ["UserJoined", async (room, name) => {
        await receiver.userJoined(room, name);
      }],
      ["UserLeft", async (room, name) => {
        await receiver.userLeft(room, name);
      }],
      ["ReceiveMessage", async (room, name, text) => {
        await receiver.receiveMessage(room, name, text);
      }]
    ];
    for (const [name, handler] of handlers) {
      connection2.on(name, handler);
    }
    return {
      dispose: () => {
        for (const [name, handler] of handlers) {
          connection2.off(name, handler);
        }
      }
    };
  }

  // chat.ts
  function byId(id, type) {
    const element = document.getElementById(id);
    if (!(element instanceof type)) throw new Error(`the page has no #${id} of the expected kind`);
    return element;
  }
  var ui = {
    status: byId("status", HTMLElement),
    joinForm: byId("join-form", HTMLFormElement),
    name: byId("name", HTMLInputElement),
    room: byId("room", HTMLInputElement),
    join: byId("join", HTMLButtonElement),
    joinError: byId("join-error", HTMLElement),
    rooms: byId("rooms", HTMLUListElement),
    noRooms: byId("no-rooms", HTMLElement),
    members: byId("members", HTMLUListElement),
    memberCount: byId("member-count", HTMLElement),
    roomTitle: byId("room-title", HTMLElement),
    messages: byId("messages", HTMLElement),
    sendForm: byId("send-form", HTMLFormElement),
    message: byId("message", HTMLInputElement),
    send: byId("send", HTMLButtonElement)
  };
  var rooms = /* @__PURE__ */ new Map();
  var current = null;
  var connected = false;
  var connection = new signalR.HubConnectionBuilder().withUrl("/chat").withAutomaticReconnect().configureLogging(signalR.LogLevel.Warning).build();
  var hub = createChatHubProxy(connection);
  function setStatus(state) {
    ui.status.textContent = state;
    ui.status.className = "status status-" + state;
    connected = state === "connected";
    updateControls();
  }
  connection.onreconnecting(() => setStatus("reconnecting"));
  connection.onreconnected(async () => {
    setStatus("connected");
    for (const [room, state] of rooms) {
      try {
        await joinRoom(room, state.name, { rejoin: true });
      } catch (e) {
        systemLine(room, `could not rejoin ${room}: ${errorText(e)}`);
      }
    }
  });
  connection.onclose(() => {
    setStatus("disconnected");
    scheduleStart(5e3);
  });
  var startTimer = null;
  function scheduleStart(ms) {
    if (startTimer) return;
    startTimer = setTimeout(() => {
      startTimer = null;
      void start();
    }, ms);
  }
  async function start() {
    if (connection.state !== signalR.HubConnectionState.Disconnected) return;
    setStatus("connecting");
    try {
      await connection.start();
      setStatus("connected");
      for (const [room, state] of rooms) {
        joinRoom(room, state.name, { rejoin: true }).catch(
          (e) => systemLine(room, `could not rejoin ${room}: ${errorText(e)}`)
        );
      }
    } catch (e) {
      console.warn("connection failed to start:", e);
      setStatus("disconnected");
      scheduleStart(3e3);
    }
  }
  registerChatClient(connection, {
    userJoined: (room, name) => roomEvent(room, { type: "joined", name }),
    userLeft: (room, name) => roomEvent(room, { type: "left", name }),
    receiveMessage: (room, name, text) => roomEvent(room, { type: "message", name, text })
  });
  function roomEvent(room, event) {
    const state = rooms.get(room);
    if (!state) return;
    if (state.pending) {
      if (event.type === "joined" && event.name === state.name && state.selfJoinEchoPending) {
        state.selfJoinEchoPending = false;
        systemLine(room, `${event.name} joined ${room}`);
        return;
      }
      state.pending.push(event);
      return;
    }
    applyEvent(room, state, event);
  }
  function applyEvent(room, state, event) {
    switch (event.type) {
      case "joined":
        if (event.name === state.name && state.selfJoinEchoPending) {
          state.selfJoinEchoPending = false;
        } else {
          state.members.set(event.name, (state.members.get(event.name) ?? 0) + 1);
        }
        systemLine(room, `${event.name} joined ${room}`);
        break;
      case "left": {
        const n = (state.members.get(event.name) ?? 0) - 1;
        if (n > 0) state.members.set(event.name, n);
        else state.members.delete(event.name);
        systemLine(room, `${event.name} left ${room}`);
        break;
      }
      case "message":
        addLog(room, { kind: "message", author: event.name, text: event.text, time: /* @__PURE__ */ new Date() });
        break;
    }
    if (room === current && event.type !== "message") renderMembers();
  }
  async function joinRoom(room, name, { rejoin = false } = {}) {
    let state = rooms.get(room);
    if (!state) {
      state = { name, members: /* @__PURE__ */ new Map(), log: [], unread: 0, pending: null, selfJoinEchoPending: false };
      rooms.set(room, state);
    }
    state.name = name;
    state.pending = [];
    state.selfJoinEchoPending = true;
    if (!rejoin) switchTo(room);
    renderRooms();
    try {
      const names = await hub.join(room, name);
      state.members = /* @__PURE__ */ new Map();
      for (const n of names) state.members.set(n, (state.members.get(n) ?? 0) + 1);
      if (!state.members.has(name)) state.members.set(name, 1);
      const pending = state.pending;
      state.pending = null;
      for (const event of pending ?? []) applyEvent(room, state, event);
      if (room === current) renderMembers();
    } catch (e) {
      state.pending = null;
      if (!rejoin) {
        rooms.delete(room);
        if (current === room) switchTo(firstRoom());
        renderRooms();
      }
      throw e;
    }
  }
  async function leaveRoom(room) {
    if (!rooms.has(room)) return;
    try {
      if (connected) await hub.leave(room);
    } catch (e) {
      systemLine(room, `could not leave ${room}: ${errorText(e)}`);
      return;
    }
    rooms.delete(room);
    if (current === room) switchTo(firstRoom());
    renderRooms();
  }
  async function sendMessage() {
    const text = ui.message.value;
    if (!current || !text.trim() || !connected) return;
    const room = current;
    ui.message.value = "";
    try {
      await hub.sendMessage(room, text);
    } catch (e) {
      systemLine(room, `message not sent: ${errorText(e)}`);
      if (!ui.message.value) ui.message.value = text;
    }
    ui.message.focus();
  }
  function addLog(room, entry) {
    const state = rooms.get(room);
    if (!state) return;
    state.log.push(entry);
    if (state.log.length > 1e3) state.log.splice(0, state.log.length - 1e3);
    if (room === current) {
      appendEntry(entry);
    } else {
      state.unread++;
      renderRooms();
    }
  }
  function systemLine(room, text) {
    addLog(room, { kind: "system", text, time: /* @__PURE__ */ new Date() });
  }
  function appendEntry(entry) {
    const box = ui.messages;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const line = document.createElement("div");
    line.title = entry.time.toLocaleTimeString();
    if (entry.kind === "message") {
      line.className = "line message";
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = entry.author;
      const sep = document.createElement("span");
      sep.className = "sep";
      sep.textContent = ": ";
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = entry.text;
      const state = current === null ? void 0 : rooms.get(current);
      if (state && entry.author === state.name) line.classList.add("own");
      line.append(author, sep, text);
    } else {
      line.className = "line system";
      line.textContent = entry.text;
    }
    box.appendChild(line);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
  function currentState() {
    return current === null ? void 0 : rooms.get(current);
  }
  function renderMessages() {
    ui.messages.replaceChildren();
    const state = currentState();
    if (!state) return;
    for (const entry of state.log) appendEntry(entry);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  function renderMembers() {
    ui.members.replaceChildren();
    const state = currentState();
    if (!state) {
      ui.memberCount.textContent = "";
      return;
    }
    const names = [...state.members.keys()].sort((a, b) => a.localeCompare(b));
    for (const name of names) {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === state.name) li.classList.add("self");
      const n = state.members.get(name) ?? 0;
      if (n > 1) li.dataset.count = `×${n}`;
      ui.members.appendChild(li);
    }
    ui.memberCount.textContent = names.length ? `(${names.length})` : "";
  }
  function renderRooms() {
    ui.rooms.replaceChildren();
    for (const [room, state] of rooms) {
      const li = document.createElement("li");
      li.dataset.room = room;
      if (room === current) li.classList.add("current");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "room-name";
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = room;
      open.appendChild(label);
      open.title = `Show ${room}`;
      open.addEventListener("click", () => switchTo(room));
      if (state.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(state.unread);
        open.appendChild(badge);
      }
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "leave";
      leave.textContent = "Leave";
      leave.title = `Leave ${room}`;
      leave.setAttribute("aria-label", `Leave ${room}`);
      leave.addEventListener("click", () => void leaveRoom(room));
      li.append(open, leave);
      ui.rooms.appendChild(li);
    }
    ui.noRooms.hidden = rooms.size > 0;
  }
  function firstRoom() {
    return rooms.keys().next().value ?? null;
  }
  function switchTo(room) {
    current = room;
    const state = currentState();
    if (state) state.unread = 0;
    ui.roomTitle.textContent = state ? `# ${room}` : "No room selected";
    renderRooms();
    renderMembers();
    renderMessages();
    updateControls();
  }
  function updateControls() {
    const canSend = connected && current !== null && rooms.has(current);
    ui.message.disabled = !canSend;
    ui.send.disabled = !canSend;
    ui.join.disabled = !connected;
  }
  function errorText(e) {
    return e instanceof Error && e.message || String(e);
  }
  ui.joinForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = ui.name.value.trim();
    const room = ui.room.value.trim();
    ui.joinError.hidden = true;
    if (!name || !room) return;
    if (rooms.has(room)) {
      switchTo(room);
      return;
    }
    try {
      localStorage.setItem("hub-chat-name", name);
    } catch {
    }
    try {
      await joinRoom(room, name);
      ui.message.focus();
    } catch (e) {
      ui.joinError.textContent = `Could not join ${room}: ${errorText(e)}`;
      ui.joinError.hidden = false;
    }
  });
  ui.sendForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void sendMessage();
  });
  try {
    const saved = localStorage.getItem("hub-chat-name");
    if (saved && !ui.name.value) ui.name.value = saved;
  } catch {
  }
  renderRooms();
  updateControls();
  void start();
})();
