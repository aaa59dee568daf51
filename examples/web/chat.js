// hub chat — browser client for the `chat` example server (hub at /chat).
//
// Hub contract:
//   client → server  Join(room, name) -> string[]   names in the room, the caller included
//                    Leave(room)
//                    SendMessage(room, text)
//   server → client  UserJoined(room, name)         to the room, the joiner included
//                    UserLeft(room, name)           to the room, the leaver included
//                    ReceiveMessage(room, name, text)
//
// Plain JavaScript, no framework, no build step. All user text goes through textContent.
(function () {
    'use strict';

    const $ = (id) => document.getElementById(id);
    const ui = {
        status: $('status'),
        joinForm: $('join-form'),
        name: $('name'),
        room: $('room'),
        join: $('join'),
        joinError: $('join-error'),
        rooms: $('rooms'),
        noRooms: $('no-rooms'),
        members: $('members'),
        memberCount: $('member-count'),
        roomTitle: $('room-title'),
        messages: $('messages'),
        sendForm: $('send-form'),
        message: $('message'),
        send: $('send'),
    };

    /**
     * room name → {
     *   name: my name in that room,
     *   members: Map(name → number of connections with that name),
     *   log: [{ kind: 'message' | 'system', author?, text, time }],
     *   unread: number,
     *   pending: events that arrived while Join was in flight (applied after its result),
     *   selfJoinEchoPending: our own UserJoined has not arrived yet (the Join result already counts us),
     * }
     */
    const rooms = new Map();
    let current = null;
    let connected = false;

    // ---------------------------------------------------------------- connection

    const connection = new signalR.HubConnectionBuilder()
        .withUrl('/chat')
        .withAutomaticReconnect()
        .configureLogging(signalR.LogLevel.Warning)
        .build();

    function setStatus(state) {
        ui.status.textContent = state;
        ui.status.className = 'status status-' + state;
        connected = state === 'connected';
        updateControls();
    }

    connection.onreconnecting(() => setStatus('reconnecting'));
    connection.onreconnected(async () => {
        setStatus('connected');
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
        setStatus('disconnected');
        // Automatic reconnect gave up (or the server closed us for good): keep trying, slowly.
        scheduleStart(5000);
    });

    let startTimer = null;
    function scheduleStart(ms) {
        if (startTimer) return;
        startTimer = setTimeout(() => {
            startTimer = null;
            start();
        }, ms);
    }

    async function start() {
        if (connection.state !== signalR.HubConnectionState.Disconnected) return;
        setStatus('connecting');
        try {
            await connection.start();
            setStatus('connected');
            // Rooms we were in before a full disconnect: join them again.
            for (const [room, state] of rooms) {
                joinRoom(room, state.name, { rejoin: true }).catch((e) => systemLine(room, `could not rejoin ${room}: ${errorText(e)}`));
            }
        } catch (e) {
            console.warn('connection failed to start:', e);
            setStatus('disconnected');
            scheduleStart(3000);
        }
    }

    // ---------------------------------------------------------------- server → client

    connection.on('UserJoined', (room, name) => roomEvent(room, { type: 'joined', name }));
    connection.on('UserLeft', (room, name) => roomEvent(room, { type: 'left', name }));
    connection.on('ReceiveMessage', (room, name, text) => roomEvent(room, { type: 'message', name, text }));

    function roomEvent(room, event) {
        const state = rooms.get(room);
        if (!state) return; // not (or no longer) in that room
        if (state.pending) {
            if (event.type === 'joined' && event.name === state.name && state.selfJoinEchoPending) {
                state.selfJoinEchoPending = false;
                addLog(room, { kind: 'system', text: `${event.name} joined ${room}` });
                return;
            }
            state.pending.push(event);
            return;
        }
        applyEvent(room, state, event);
    }

    function applyEvent(room, state, event) {
        switch (event.type) {
            case 'joined':
                if (event.name === state.name && state.selfJoinEchoPending) {
                    // our own join, already counted by the Join result
                    state.selfJoinEchoPending = false;
                } else {
                    state.members.set(event.name, (state.members.get(event.name) || 0) + 1);
                }
                addLog(room, { kind: 'system', text: `${event.name} joined ${room}` });
                break;
            case 'left': {
                const n = (state.members.get(event.name) || 0) - 1;
                if (n > 0) state.members.set(event.name, n);
                else state.members.delete(event.name);
                addLog(room, { kind: 'system', text: `${event.name} left ${room}` });
                break;
            }
            case 'message':
                addLog(room, { kind: 'message', author: event.name, text: event.text });
                break;
        }
        if (room === current && event.type !== 'message') renderMembers();
    }

    // ---------------------------------------------------------------- client → server

    async function joinRoom(room, name, { rejoin = false } = {}) {
        let state = rooms.get(room);
        if (!state) {
            state = { name, members: new Map(), log: [], unread: 0 };
            rooms.set(room, state);
        }
        state.name = name;
        state.pending = [];
        state.selfJoinEchoPending = true;
        if (!rejoin) switchTo(room);
        renderRooms();
        try {
            const names = await connection.invoke('Join', room, name);
            state.members = new Map();
            for (const n of names || []) state.members.set(n, (state.members.get(n) || 0) + 1);
            if (!state.members.has(name)) state.members.set(name, 1);
            const pending = state.pending;
            state.pending = null;
            for (const event of pending) applyEvent(room, state, event);
            if (room === current) renderMembers();
        } catch (e) {
            state.pending = null;
            if (!rejoin) {
                rooms.delete(room);
                if (current === room) switchTo(rooms.keys().next().value ?? null);
                renderRooms();
            }
            throw e;
        }
    }

    async function leaveRoom(room) {
        const state = rooms.get(room);
        if (!state) return;
        try {
            if (connected) await connection.invoke('Leave', room);
        } catch (e) {
            systemLine(room, `could not leave ${room}: ${errorText(e)}`);
            return;
        }
        rooms.delete(room);
        if (current === room) switchTo(rooms.keys().next().value ?? null);
        renderRooms();
    }

    async function sendMessage() {
        const text = ui.message.value;
        if (!current || !text.trim() || !connected) return;
        const room = current;
        ui.message.value = '';
        try {
            await connection.invoke('SendMessage', room, text);
        } catch (e) {
            systemLine(room, `message not sent: ${errorText(e)}`);
            if (!ui.message.value) ui.message.value = text;
        }
        ui.message.focus();
    }

    // ---------------------------------------------------------------- rendering

    function addLog(room, entry) {
        const state = rooms.get(room);
        if (!state) return;
        entry.time = new Date();
        state.log.push(entry);
        if (state.log.length > 1000) state.log.splice(0, state.log.length - 1000);
        if (room === current) {
            appendEntry(entry);
        } else {
            state.unread++;
            renderRooms();
        }
    }

    function systemLine(room, text) {
        addLog(room, { kind: 'system', text });
    }

    function appendEntry(entry) {
        const box = ui.messages;
        const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        const line = document.createElement('div');
        line.title = entry.time.toLocaleTimeString();
        if (entry.kind === 'message') {
            line.className = 'line message';
            const author = document.createElement('span');
            author.className = 'author';
            author.textContent = entry.author;
            const sep = document.createElement('span');
            sep.className = 'sep';
            sep.textContent = ': ';
            const text = document.createElement('span');
            text.className = 'text';
            text.textContent = entry.text;
            const state = rooms.get(current);
            if (state && entry.author === state.name) line.classList.add('own');
            line.append(author, sep, text);
        } else {
            line.className = 'line system';
            line.textContent = entry.text;
        }
        box.appendChild(line);
        if (atBottom) box.scrollTop = box.scrollHeight;
    }

    function renderMessages() {
        ui.messages.replaceChildren();
        const state = current && rooms.get(current);
        if (!state) return;
        for (const entry of state.log) appendEntry(entry);
        ui.messages.scrollTop = ui.messages.scrollHeight;
    }

    function renderMembers() {
        ui.members.replaceChildren();
        const state = current && rooms.get(current);
        if (!state) {
            ui.memberCount.textContent = '';
            return;
        }
        const names = [...state.members.keys()].sort((a, b) => a.localeCompare(b));
        for (const name of names) {
            const li = document.createElement('li');
            li.textContent = name;
            if (name === state.name) li.classList.add('self');
            const n = state.members.get(name);
            if (n > 1) li.dataset.count = `×${n}`;
            ui.members.appendChild(li);
        }
        ui.memberCount.textContent = names.length ? `(${names.length})` : '';
    }

    function renderRooms() {
        ui.rooms.replaceChildren();
        for (const [room, state] of rooms) {
            const li = document.createElement('li');
            li.dataset.room = room;
            if (room === current) li.classList.add('current');

            const open = document.createElement('button');
            open.type = 'button';
            open.className = 'room-name';
            const label = document.createElement('span');
            label.className = 'label';
            label.textContent = room;
            open.appendChild(label);
            open.title = `Show ${room}`;
            open.addEventListener('click', () => switchTo(room));
            if (state.unread > 0) {
                const badge = document.createElement('span');
                badge.className = 'unread';
                badge.textContent = String(state.unread);
                open.appendChild(badge);
            }

            const leave = document.createElement('button');
            leave.type = 'button';
            leave.className = 'leave';
            leave.textContent = 'Leave';
            leave.title = `Leave ${room}`;
            leave.setAttribute('aria-label', `Leave ${room}`);
            leave.addEventListener('click', () => leaveRoom(room));

            li.append(open, leave);
            ui.rooms.appendChild(li);
        }
        ui.noRooms.hidden = rooms.size > 0;
    }

    function switchTo(room) {
        current = room;
        const state = room && rooms.get(room);
        if (state) state.unread = 0;
        ui.roomTitle.textContent = state ? `# ${room}` : 'No room selected';
        renderRooms();
        renderMembers();
        renderMessages();
        updateControls();
    }

    function updateControls() {
        const canSend = connected && !!current && rooms.has(current);
        ui.message.disabled = !canSend;
        ui.send.disabled = !canSend;
        ui.join.disabled = !connected;
    }

    function errorText(e) {
        return (e && e.message) || String(e);
    }

    // ---------------------------------------------------------------- events

    ui.joinForm.addEventListener('submit', async (ev) => {
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
            localStorage.setItem('hub-chat-name', name);
        } catch (_) { /* storage may be unavailable */ }
        try {
            await joinRoom(room, name);
            ui.message.focus();
        } catch (e) {
            ui.joinError.textContent = `Could not join ${room}: ${errorText(e)}`;
            ui.joinError.hidden = false;
        }
    });

    // The send form submits on Enter in #message and on #send.
    ui.sendForm.addEventListener('submit', (ev) => {
        ev.preventDefault();
        sendMessage();
    });

    try {
        const saved = localStorage.getItem('hub-chat-name');
        if (saved && !ui.name.value) ui.name.value = saved;
    } catch (_) { /* storage may be unavailable */ }

    renderRooms();
    updateControls();
    start();
})();
