// hub confirm — browser client for the `confirm` example server (hub at /confirm).
//
// Hub contract:
//   client → server  Items() -> [{ id, name }]
//                    Add(name) -> { id, name }
//                    Delete(id) -> "deleted" | "kept" | "noAnswer" | "alreadyGone"
//   server → client  ConfirmDelete({ id, name }) -> boolean   a client result: the server waits
//                                                             for this page's answer
//                    ItemsChanged([{ id, name }])            to every page
//
// Plain JavaScript, no framework, no build step. All item names go through textContent.
(function () {
    'use strict';

    const $ = (id) => document.getElementById(id);
    const ui = {
        status: $('status'),
        items: $('items'),
        addForm: $('add-form'),
        newName: $('new-name'),
        add: $('add'),
        outcome: $('outcome'),
        error: $('error'),
        dialog: $('confirm-dialog'),
        question: $('confirm-question'),
        yes: $('confirm-yes'),
        no: $('confirm-no'),
    };

    const OUTCOMES = {
        deleted: (name) => `deleted ${name}`,
        kept: (name) => `kept ${name}`,
        noAnswer: (name) => `no answer in time: kept ${name}`,
        alreadyGone: (name) => `${name} was already deleted`,
    };

    let connected = false;
    /** The open question: { id, answer(boolean) } or null. */
    let question = null;

    const connection = new signalR.HubConnectionBuilder()
        .withUrl('/confirm')
        .withAutomaticReconnect()
        .configureLogging(signalR.LogLevel.Warning)
        .build();

    function setStatus(state) {
        ui.status.textContent = state;
        ui.status.className = 'status status-' + state;
        connected = state === 'connected';
        ui.add.disabled = !connected;
        for (const button of ui.items.querySelectorAll('button')) button.disabled = !connected;
    }

    function showError(err) {
        ui.error.textContent = err && err.message ? err.message : String(err);
        ui.error.hidden = false;
    }

    function render(items) {
        ui.items.replaceChildren(...items.map((item) => {
            const li = document.createElement('li');
            li.dataset.id = String(item.id);
            const name = document.createElement('span');
            name.className = 'item-name';
            name.textContent = item.name;
            const del = document.createElement('button');
            del.type = 'button';
            del.className = 'delete';
            del.textContent = 'Delete';
            del.disabled = !connected;
            del.addEventListener('click', () => remove(item, li));
            li.append(name, del);
            return li;
        }));
    }

    // ----------------------------------------------------- the question (a client result)

    // The handler's return value (here a promise of a boolean) is the answer the server awaits.
    connection.on('ConfirmDelete', (item) => new Promise((resolve) => {
        closeQuestion(false); // a newer question replaces an unanswered one
        question = { id: item.id, answer: resolve };
        ui.question.textContent = `Delete ${item.name}?`;
        ui.dialog.dataset.itemId = String(item.id);
        ui.dialog.hidden = false;
        ui.yes.focus();
    }));

    /** Answers the open question (if any) and closes the dialog. */
    function closeQuestion(answer) {
        const open = question;
        question = null;
        ui.dialog.hidden = true;
        delete ui.dialog.dataset.itemId;
        if (open) open.answer(answer);
    }

    ui.yes.addEventListener('click', () => closeQuestion(true));
    ui.no.addEventListener('click', () => closeQuestion(false));
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && question) closeQuestion(false); });

    // ----------------------------------------------------------------- actions

    async function remove(item, li) {
        ui.error.hidden = true;
        ui.outcome.textContent = `asking to delete ${item.name}…`;
        li.classList.add('pending');
        try {
            const outcome = await connection.invoke('Delete', item.id);
            // after a timeout the server no longer waits: a dialog still open is stale (closing
            // it sends a late answer, which the server ignores)
            if (question && question.id === item.id) closeQuestion(false);
            ui.outcome.textContent = (OUTCOMES[outcome] || ((n) => `${outcome}: ${n}`))(item.name);
            ui.outcome.dataset.outcome = outcome;
        } catch (err) {
            ui.outcome.textContent = '';
            showError(err);
        } finally {
            li.classList.remove('pending');
        }
    }

    ui.addForm.addEventListener('submit', async (e) => {
        e.preventDefault();
        ui.error.hidden = true;
        try {
            await connection.invoke('Add', ui.newName.value);
            ui.newName.value = '';
        } catch (err) {
            showError(err);
        }
    });

    connection.on('ItemsChanged', render);

    // ---------------------------------------------------------------- lifecycle

    async function load() {
        render(await connection.invoke('Items'));
    }

    connection.onreconnecting(() => setStatus('reconnecting'));
    connection.onreconnected(() => {
        setStatus('connected');
        load().catch(showError);
    });
    connection.onclose(() => {
        closeQuestion(false);
        setStatus('disconnected');
    });

    async function start() {
        try {
            await connection.start();
        } catch (err) {
            setStatus('disconnected');
            console.warn('could not connect, retrying in 2 s:', err);
            setTimeout(start, 2000);
            return;
        }
        setStatus('connected');
        await load().catch(showError);
    }
    start();
})();
