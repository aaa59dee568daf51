// Compiled from chat.ts and generated/ChatHub.ts by esbuild (`npm run build:web` in examples/js).
// Do not edit: edit chat.ts and rebuild. `npm run check:web` fails when this file is stale.
"use strict";
(() => {
  // generated/ChatHub.ts
  function createChatHubProxy(connection2) {
    return {
      join: (room) => connection2.invoke("Join", room),
      leave: (room) => connection2.invoke("Leave", room),
      sendMessage: (room, text) => connection2.invoke("SendMessage", room, text),
      subscribe: (room, from) => connection2.stream("Subscribe", room, from)
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
  var myName = null;
  var SESSION_KEY = "hub-chat-session";
  function saveSession() {
    if (myName === null) return;
    const saved = {
      name: myName,
      current,
      rooms: [...rooms].map(([room, state]) => [room, state.position])
    };
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    } catch {
    }
  }
  function loadSession() {
    try {
      const text = sessionStorage.getItem(SESSION_KEY);
      if (!text) return null;
      const saved = JSON.parse(text);
      if (typeof saved.name !== "string" || !Array.isArray(saved.rooms)) return null;
      return saved;
    } catch {
      return null;
    }
  }
  function setStatus(state) {
    ui.status.textContent = state;
    ui.status.className = "status status-" + state.replace(" ", "-");
    connected = state === "connected";
    updateControls();
  }
  var connection = null;
  var hub = null;
  function connect(name) {
    const c = new signalR.HubConnectionBuilder().withUrl("/chat?name=" + encodeURIComponent(name)).withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (retry) => Math.min(1e3 * 2 ** retry.previousRetryCount, 1e4)
    }).configureLogging(signalR.LogLevel.None).build();
    registerChatClient(c, {
      userJoined: (room, who) => roomEvent(room, { type: "joined", name: who }),
      userLeft: (room, who) => roomEvent(room, { type: "left", name: who }),
      // Only for rooms the server keeps no history of (the chat server keeps one of every room).
      receiveMessage: (room, who, text) => {
        if (rooms.has(room)) addLog(room, { kind: "message", author: who, text, time: /* @__PURE__ */ new Date() });
      }
    });
    c.onreconnecting(() => {
      if (c === connection) setStatus("reconnecting");
    });
    c.onreconnected(() => {
      if (c !== connection) return;
      setStatus("connected");
      rejoinAll();
    });
    c.onclose(() => {
      if (c !== connection) return;
      setStatus("disconnected");
      scheduleStart(3e3);
    });
    return c;
  }
  async function connectAs(name) {
    if (connection && myName === name) return;
    const old = connection;
    connection = null;
    hub = null;
    for (const state of rooms.values()) closeStream(state);
    if (old) await old.stop();
    myName = name;
    connection = connect(name);
    hub = createChatHubProxy(connection);
    saveSession();
    await start();
  }
  var startTimer = null;
  function scheduleStart(ms) {
    if (startTimer) return;
    startTimer = setTimeout(() => {
      startTimer = null;
      void start();
    }, ms);
  }
  async function start() {
    const c = connection;
    if (!c || c.state !== signalR.HubConnectionState.Disconnected) return;
    setStatus("connecting");
    try {
      await c.start();
    } catch (e) {
      if (c !== connection) return;
      console.warn("connection failed to start:", e);
      setStatus("disconnected");
      scheduleStart(3e3);
      return;
    }
    if (c !== connection) return;
    setStatus("connected");
    rejoinAll();
  }
  function rejoinAll() {
    for (const room of rooms.keys()) {
      joinRoom(room).catch((e) => systemLine(room, `could not rejoin ${room}: ${errorText(e)}`));
    }
  }
  function roomEvent(room, event) {
    const state = rooms.get(room);
    if (!state) return;
    if (state.pending) state.pending.push(event);
    else applyEvent(room, state, event);
  }
  function applyEvent(room, state, event) {
    if (event.type === "joined") {
      state.members.add(event.name);
      systemLine(room, `${event.name} joined ${room}`);
    } else {
      state.members.delete(event.name);
      systemLine(room, `${event.name} left ${room}`);
    }
    if (room === current) renderMembers();
  }
  function closeStream(state) {
    const stream = state.stream;
    state.stream = null;
    try {
      stream?.dispose();
    } catch {
    }
  }
  function posted(room, state, item) {
    if (!state.position || item.offset <= state.position.offset) return;
    state.position = { epoch: state.position.epoch, offset: item.offset };
    addLog(room, { kind: "message", author: item.name, text: item.text, time: /* @__PURE__ */ new Date() });
    saveSession();
  }
  function follow(room, state) {
    if (!hub || !state.position) return;
    closeStream(state);
    const subscription = hub.subscribe(room, state.position).subscribe({
      next: (item) => {
        if (rooms.get(room) !== state) return;
        if ("recovered" in item) {
          if (!item.recovered) {
            systemLine(room, "some messages of this room are no longer kept");
            state.position = { epoch: item.epoch, offset: item.offset };
            saveSession();
          }
        } else {
          posted(room, state, item);
        }
      },
      error: () => {
        if (state.stream === subscription) state.stream = null;
      },
      complete: () => {
        if (state.stream === subscription) state.stream = null;
      }
    });
    state.stream = subscription;
  }
  function newRoom(position) {
    return { members: /* @__PURE__ */ new Set(), log: [], unread: 0, pending: null, position, stream: null };
  }
  async function joinRoom(room, { show = false } = {}) {
    let state = rooms.get(room);
    const isNew = !state;
    if (!state) {
      state = newRoom(null);
      rooms.set(room, state);
    }
    if (show) switchTo(room);
    renderRooms();
    if (!hub) return;
    state.pending = [];
    try {
      const view = await hub.join(room);
      state.members = new Set(view.members);
      const seen = state.position;
      if (!view.position) {
        state.position = null;
      } else if (seen && seen.epoch === view.position.epoch && seen.offset <= view.position.offset) {
        if (!state.log.some((entry) => entry.kind === "message")) {
          for (const item of view.recent) {
            if (item.offset <= seen.offset) {
              addLog(room, { kind: "message", author: item.name, text: item.text, time: /* @__PURE__ */ new Date() });
            }
          }
        }
      } else {
        if (seen) systemLine(room, `the history of ${room} started again; showing its latest messages`);
        state.position = { epoch: view.position.epoch, offset: 0 };
        for (const item of view.recent) posted(room, state, item);
        state.position = view.position;
      }
      const pending = state.pending;
      state.pending = null;
      for (const event of pending ?? []) applyEvent(room, state, event);
      saveSession();
      follow(room, state);
      if (room === current) renderMembers();
    } catch (e) {
      state.pending = null;
      if (isNew) {
        rooms.delete(room);
        if (current === room) switchTo(firstRoom());
        renderRooms();
        saveSession();
      }
      throw e;
    }
  }
  async function leaveRoom(room) {
    const state = rooms.get(room);
    if (!state) return;
    try {
      if (connected && hub) await hub.leave(room);
    } catch (e) {
      systemLine(room, `could not leave ${room}: ${errorText(e)}`);
      return;
    }
    closeStream(state);
    rooms.delete(room);
    if (current === room) switchTo(firstRoom());
    renderRooms();
    saveSession();
  }
  async function sendMessage() {
    const text = ui.message.value;
    if (!current || !text.trim() || !connected || !hub) return;
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
      if (entry.author === myName) line.classList.add("own");
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
    const names = [...state.members].sort((a, b) => a.localeCompare(b));
    for (const name of names) {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === myName) li.classList.add("self");
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
    ui.join.disabled = connection !== null && !connected;
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
      await connectAs(name);
      await joinRoom(room, { show: true });
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
  var session = loadSession();
  if (session) {
    for (const [room, position] of session.rooms) rooms.set(room, newRoom(position));
    current = session.current !== null && rooms.has(session.current) ? session.current : firstRoom();
    ui.name.value = session.name;
    switchTo(current);
    void connectAs(session.name);
  } else {
    setStatus("not connected");
    renderRooms();
  }
})();
