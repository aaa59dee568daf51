// hub chat: the browser page of the `chat` example server (hub at /chat).
//
// The hub's methods and the calls it makes to the page are typed by `generated/ChatHub.ts`,
// which `chat --emit-typescript` writes from the Rust definition (a test keeps it current), so
// a wrong method name or argument does not compile.
//
// How it is built: esbuild bundles this file and the generated module into one classic script,
// `chat.js` (`npm run build:web` in examples/js), which is committed and embedded in the binary,
// so `cargo run --bin chat` needs no TypeScript toolchain; `npm run check:web` fails when the
// committed file is stale and runs `tsc --strict --noEmit`. The official client itself is not
// bundled: the page loads its unmodified browser build (`/signalr.min.js`, the global `signalR`,
// shared with the other example pages) before this script, and only its types are imported
// here. No framework; all user text goes through textContent.

import type * as SignalR from "@microsoft/signalr";

import { createChatHubProxy, registerChatClient } from "./generated/ChatHub.js";

/** The official browser client, from `/signalr.min.js`. */
declare const signalR: typeof SignalR;

/** Something the hub told us about a room. */
type RoomEvent =
    | { type: "joined"; name: string }
    | { type: "left"; name: string }
    | { type: "message"; name: string; text: string };

/** A line in a room's log. */
type LogEntry =
    | { kind: "message"; author: string; text: string; time: Date }
    | { kind: "system"; text: string; time: Date };

/** A room we are in. */
interface RoomState {
    /** My name in that room. */
    name: string;
    /** Member name → number of connections with that name. */
    members: Map<string, number>;
    log: LogEntry[];
    unread: number;
    /** Events that arrived while Join was in flight (applied after its result); null otherwise. */
    pending: RoomEvent[] | null;
    /** Our own UserJoined has not arrived yet (the Join result already counts us). */
    selfJoinEchoPending: boolean;
}

/** The element with `id`, which must be a `type`. */
function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
    const element = document.getElementById(id);
    if (!(element instanceof type)) throw new Error(`the page has no #${id} of the expected kind`);
    return element;
}

const ui = {
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
    send: byId("send", HTMLButtonElement),
};

const rooms = new Map<string, RoomState>();
let current: string | null = null;
let connected = false;

// ---------------------------------------------------------------- connection

const connection = new signalR.HubConnectionBuilder()
    .withUrl("/chat")
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.Warning)
    .build();
const hub = createChatHubProxy(connection);

type Status = "connecting" | "connected" | "reconnecting" | "disconnected";

function setStatus(state: Status): void {
    ui.status.textContent = state;
    ui.status.className = "status status-" + state;
    connected = state === "connected";
    updateControls();
}

connection.onreconnecting(() => setStatus("reconnecting"));
connection.onreconnected(async () => {
    setStatus("connected");
    // A reconnect is a new connection: the server no longer has us in any room. Join them again.
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
    // Automatic reconnect gave up (or the server closed us for good): keep trying, slowly.
    scheduleStart(5000);
});

let startTimer: ReturnType<typeof setTimeout> | null = null;
function scheduleStart(ms: number): void {
    if (startTimer) return;
    startTimer = setTimeout(() => {
        startTimer = null;
        void start();
    }, ms);
}

async function start(): Promise<void> {
    if (connection.state !== signalR.HubConnectionState.Disconnected) return;
    setStatus("connecting");
    try {
        await connection.start();
        setStatus("connected");
        // Rooms we were in before a full disconnect: join them again.
        for (const [room, state] of rooms) {
            joinRoom(room, state.name, { rejoin: true }).catch((e: unknown) =>
                systemLine(room, `could not rejoin ${room}: ${errorText(e)}`),
            );
        }
    } catch (e) {
        console.warn("connection failed to start:", e);
        setStatus("disconnected");
        scheduleStart(3000);
    }
}

// ---------------------------------------------------------------- server → client

registerChatClient(connection, {
    userJoined: (room, name) => roomEvent(room, { type: "joined", name }),
    userLeft: (room, name) => roomEvent(room, { type: "left", name }),
    receiveMessage: (room, name, text) => roomEvent(room, { type: "message", name, text }),
});

function roomEvent(room: string, event: RoomEvent): void {
    const state = rooms.get(room);
    if (!state) return; // not (or no longer) in that room
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

function applyEvent(room: string, state: RoomState, event: RoomEvent): void {
    switch (event.type) {
        case "joined":
            if (event.name === state.name && state.selfJoinEchoPending) {
                // our own join, already counted by the Join result
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
            addLog(room, { kind: "message", author: event.name, text: event.text, time: new Date() });
            break;
    }
    if (room === current && event.type !== "message") renderMembers();
}

// ---------------------------------------------------------------- client → server

async function joinRoom(room: string, name: string, { rejoin = false } = {}): Promise<void> {
    let state = rooms.get(room);
    if (!state) {
        state = { name, members: new Map(), log: [], unread: 0, pending: null, selfJoinEchoPending: false };
        rooms.set(room, state);
    }
    state.name = name;
    state.pending = [];
    state.selfJoinEchoPending = true;
    if (!rejoin) switchTo(room);
    renderRooms();
    try {
        const names = await hub.join(room, name);
        state.members = new Map();
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

async function leaveRoom(room: string): Promise<void> {
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

async function sendMessage(): Promise<void> {
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

// ---------------------------------------------------------------- rendering

function addLog(room: string, entry: LogEntry): void {
    const state = rooms.get(room);
    if (!state) return;
    state.log.push(entry);
    if (state.log.length > 1000) state.log.splice(0, state.log.length - 1000);
    if (room === current) {
        appendEntry(entry);
    } else {
        state.unread++;
        renderRooms();
    }
}

function systemLine(room: string, text: string): void {
    addLog(room, { kind: "system", text, time: new Date() });
}

function appendEntry(entry: LogEntry): void {
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
        const state = current === null ? undefined : rooms.get(current);
        if (state && entry.author === state.name) line.classList.add("own");
        line.append(author, sep, text);
    } else {
        line.className = "line system";
        line.textContent = entry.text;
    }
    box.appendChild(line);
    if (atBottom) box.scrollTop = box.scrollHeight;
}

function currentState(): RoomState | undefined {
    return current === null ? undefined : rooms.get(current);
}

function renderMessages(): void {
    ui.messages.replaceChildren();
    const state = currentState();
    if (!state) return;
    for (const entry of state.log) appendEntry(entry);
    ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderMembers(): void {
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

function renderRooms(): void {
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

function firstRoom(): string | null {
    return rooms.keys().next().value ?? null;
}

function switchTo(room: string | null): void {
    current = room;
    const state = currentState();
    if (state) state.unread = 0;
    ui.roomTitle.textContent = state ? `# ${room}` : "No room selected";
    renderRooms();
    renderMembers();
    renderMessages();
    updateControls();
}

function updateControls(): void {
    const canSend = connected && current !== null && rooms.has(current);
    ui.message.disabled = !canSend;
    ui.send.disabled = !canSend;
    ui.join.disabled = !connected;
}

function errorText(e: unknown): string {
    return (e instanceof Error && e.message) || String(e);
}

// ---------------------------------------------------------------- events

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
        // storage may be unavailable
    }
    try {
        await joinRoom(room, name);
        ui.message.focus();
    } catch (e) {
        ui.joinError.textContent = `Could not join ${room}: ${errorText(e)}`;
        ui.joinError.hidden = false;
    }
});

// The send form submits on Enter in #message and on #send.
ui.sendForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void sendMessage();
});

try {
    const saved = localStorage.getItem("hub-chat-name");
    if (saved && !ui.name.value) ui.name.value = saved;
} catch {
    // storage may be unavailable
}

renderRooms();
updateControls();
void start();
