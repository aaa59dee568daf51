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
//
// The name a page picks is its connection's identity (`/chat?name=...`): the members list and
// the join/leave lines come from the server's presence. Messages come from each room's
// history: `Join` returns the latest ones and their position, `Subscribe` streams what came
// after a position. The page keeps its name, its rooms and its last position in each room in
// sessionStorage, so after a reconnect (to any server of the fleet) or a reload it resumes
// where it was and shows what it missed, each message once.

import type * as SignalR from "@microsoft/signalr";

import {
    createChatHubProxy,
    registerChatClient,
    type ChatHub,
    type Mark,
    type Posted,
    type RoomItem,
} from "./generated/ChatHub.js";

/** The official browser client, from `/signalr.min.js`. */
declare const signalR: typeof SignalR;

/** Something the hub told us about a room's members. */
type RoomEvent = { type: "joined"; name: string } | { type: "left"; name: string };

/** A line in a room's log. */
type LogEntry =
    | { kind: "message"; author: string; text: string; time: Date }
    | { kind: "system"; text: string; time: Date };

/** A room we are in. */
interface RoomState {
    /** Who is in it, on every server (from presence). */
    members: Set<string>;
    log: LogEntry[];
    unread: number;
    /** Member events that arrived while Join was in flight (applied after its result); null otherwise. */
    pending: RoomEvent[] | null;
    /** The last message seen in the room's history; null before the first Join. */
    position: Mark | null;
    /** The open `Subscribe` stream, if any. */
    stream: { dispose(): void } | null;
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
/** The name the connection was opened with; null before the first Join. */
let myName: string | null = null;

// ---------------------------------------------------------------- saved session

const SESSION_KEY = "hub-chat-session";

/** What survives a reload of this tab: the name, the rooms and the last position in each. */
interface SavedSession {
    name: string;
    current: string | null;
    rooms: [string, Mark | null][];
}

function saveSession(): void {
    if (myName === null) return;
    const saved: SavedSession = {
        name: myName,
        current,
        rooms: [...rooms].map(([room, state]) => [room, state.position]),
    };
    try {
        sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    } catch {
        // storage may be unavailable
    }
}

function loadSession(): SavedSession | null {
    try {
        const text = sessionStorage.getItem(SESSION_KEY);
        if (!text) return null;
        const saved = JSON.parse(text) as SavedSession;
        if (typeof saved.name !== "string" || !Array.isArray(saved.rooms)) return null;
        return saved;
    } catch {
        return null;
    }
}

// ---------------------------------------------------------------- connection

type Status = "not connected" | "connecting" | "connected" | "reconnecting" | "disconnected";

function setStatus(state: Status): void {
    ui.status.textContent = state;
    ui.status.className = "status status-" + state.replace(" ", "-");
    connected = state === "connected";
    updateControls();
}

let connection: SignalR.HubConnection | null = null;
let hub: ChatHub | null = null;

/** A connection under `name`: its user id on the server. */
function connect(name: string): SignalR.HubConnection {
    const c = new signalR.HubConnectionBuilder()
        .withUrl("/chat?name=" + encodeURIComponent(name))
        // Keep trying (1 s, 2 s, 4 s, then every 10 s): a server of the fleet may come back.
        .withAutomaticReconnect({
            nextRetryDelayInMilliseconds: (retry) => Math.min(1000 * 2 ** retry.previousRetryCount, 10_000),
        })
        .configureLogging(signalR.LogLevel.None)
        .build();
    registerChatClient(c, {
        userJoined: (room, who) => roomEvent(room, { type: "joined", name: who }),
        userLeft: (room, who) => roomEvent(room, { type: "left", name: who }),
        // Only for rooms the server keeps no history of (the chat server keeps one of every room).
        receiveMessage: (room, who, text) => {
            if (rooms.has(room)) addLog(room, { kind: "message", author: who, text, time: new Date() });
        },
    });
    c.onreconnecting(() => {
        if (c === connection) setStatus("reconnecting");
    });
    c.onreconnected(() => {
        if (c !== connection) return;
        setStatus("connected");
        // A reconnect is a new connection: the server no longer has us in any room.
        rejoinAll();
    });
    c.onclose(() => {
        if (c !== connection) return;
        setStatus("disconnected");
        scheduleStart(3000);
    });
    return c;
}

/** Opens (or reopens, under another name) the connection, then joins the rooms we are in. */
async function connectAs(name: string): Promise<void> {
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

let startTimer: ReturnType<typeof setTimeout> | null = null;
function scheduleStart(ms: number): void {
    if (startTimer) return;
    startTimer = setTimeout(() => {
        startTimer = null;
        void start();
    }, ms);
}

async function start(): Promise<void> {
    const c = connection;
    if (!c || c.state !== signalR.HubConnectionState.Disconnected) return;
    setStatus("connecting");
    try {
        await c.start();
    } catch (e) {
        if (c !== connection) return;
        console.warn("connection failed to start:", e);
        setStatus("disconnected");
        scheduleStart(3000);
        return;
    }
    if (c !== connection) return;
    setStatus("connected");
    rejoinAll();
}

function rejoinAll(): void {
    for (const room of rooms.keys()) {
        joinRoom(room).catch((e: unknown) => systemLine(room, `could not rejoin ${room}: ${errorText(e)}`));
    }
}

// ---------------------------------------------------------------- server → client

function roomEvent(room: string, event: RoomEvent): void {
    const state = rooms.get(room);
    if (!state) return; // not (or no longer) in that room
    if (state.pending) state.pending.push(event);
    else applyEvent(room, state, event);
}

function applyEvent(room: string, state: RoomState, event: RoomEvent): void {
    if (event.type === "joined") {
        state.members.add(event.name);
        systemLine(room, `${event.name} joined ${room}`);
    } else {
        state.members.delete(event.name);
        systemLine(room, `${event.name} left ${room}`);
    }
    if (room === current) renderMembers();
}

function closeStream(state: RoomState): void {
    const stream = state.stream;
    state.stream = null;
    try {
        stream?.dispose();
    } catch {
        // the connection is gone already
    }
}

/** Shows a message of a room's history unless we have seen it; moves our position past it. */
function posted(room: string, state: RoomState, item: Posted): void {
    if (!state.position || item.offset <= state.position.offset) return;
    state.position = { epoch: state.position.epoch, offset: item.offset };
    addLog(room, { kind: "message", author: item.name, text: item.text, time: new Date() });
    saveSession();
}

/** Streams the room's messages after our position: what we missed, then the new ones. */
function follow(room: string, state: RoomState): void {
    if (!hub || !state.position) return;
    closeStream(state);
    const subscription = hub.subscribe(room, state.position).subscribe({
        next: (item: RoomItem) => {
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
            // The connection ended: the rooms are joined and followed again once it is back.
            if (state.stream === subscription) state.stream = null;
        },
        complete: () => {
            if (state.stream === subscription) state.stream = null;
        },
    });
    state.stream = subscription;
}

// ---------------------------------------------------------------- client → server

function newRoom(position: Mark | null): RoomState {
    return { members: new Set(), log: [], unread: 0, pending: null, position, stream: null };
}

async function joinRoom(room: string, { show = false } = {}): Promise<void> {
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
            // This server's rooms keep no history: messages come as ReceiveMessage.
            state.position = null;
        } else if (seen && seen.epoch === view.position.epoch && seen.offset <= view.position.offset) {
            // Back after a reconnect or a reload: show what we had (after a reload the log is
            // empty), then follow from where we were, which brings what we missed.
            if (!state.log.some((entry) => entry.kind === "message")) {
                for (const item of view.recent) {
                    if (item.offset <= seen.offset) {
                        addLog(room, { kind: "message", author: item.name, text: item.text, time: new Date() });
                    }
                }
            }
        } else {
            if (seen) systemLine(room, `the history of ${room} started again; showing its latest messages`);
            state.position = { epoch: view.position.epoch, offset: 0 };
            for (const item of view.recent) posted(room, state, item);
            state.position = view.position;
        }
        // Member events that came while Join was in flight, after the messages from before.
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

async function leaveRoom(room: string): Promise<void> {
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

async function sendMessage(): Promise<void> {
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
        if (entry.author === myName) line.classList.add("own");
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
    const names = [...state.members].sort((a, b) => a.localeCompare(b));
    for (const name of names) {
        const li = document.createElement("li");
        li.textContent = name;
        if (name === myName) li.classList.add("self");
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
    // Before the first Join there is no connection yet: joining opens it.
    ui.join.disabled = connection !== null && !connected;
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
        // The name is the connection's identity: another name means another connection.
        await connectAs(name);
        await joinRoom(room, { show: true });
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

// A reloaded tab comes back under its name, in its rooms, from where it was in each.
const session = loadSession();
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
