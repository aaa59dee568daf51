// hub dashboard — browser client for the `dashboard` example server (hub at /dashboard).
//
// Hub contract:
//   server → client  Sample({ server, seq, timeMs, connections, streams, load })   pushed to every page by the
//                                                                 server's background task
//   client → server  Readings(intervalMs) -> stream of { seq, timeMs, load }
//
// Plain JavaScript and SVG, no framework, no build step. What the page received is also kept
// in data attributes (`data-count`, `data-last-seq` on each chart, `data-seq`/`data-load` on the
// rows of recent samples), which the browser test reads.
(function () {
    'use strict';

    const WINDOW = 60; // points per chart
    const RECENT_ROWS = 10;

    const $ = (id) => document.getElementById(id);
    const ui = {
        status: $('status'),
        connections: $('connections'),
        streams: $('streams'),
        sampleLoad: $('sample-load'),
        sampleCount: $('sample-count'),
        samplesChart: $('samples-chart'),
        recent: $('recent-samples'),
        rate: $('rate'),
        toggle: $('toggle-stream'),
        streamState: $('stream-state'),
        streamError: $('stream-error'),
        readingLoad: $('reading-load'),
        readingCount: $('reading-count'),
        readingsChart: $('readings-chart'),
    };

    /** A chart: the last WINDOW values drawn as one SVG polyline, y from 0 (bottom) to 100 (top). */
    function chart(svg) {
        const line = svg.querySelector('polyline');
        const values = [];
        let count = 0;
        return {
            add(seq, value) {
                values.push(value);
                if (values.length > WINDOW) values.shift();
                count += 1;
                const step = 600 / (WINDOW - 1);
                line.setAttribute('points', values
                    .map((v, i) => `${(i * step).toFixed(1)},${(200 - v * 2).toFixed(1)}`)
                    .join(' '));
                svg.dataset.count = String(count);
                svg.dataset.lastSeq = String(seq);
                return count;
            },
        };
    }

    const samplesChart = chart(ui.samplesChart);
    const readingsChart = chart(ui.readingsChart);

    const connection = new signalR.HubConnectionBuilder()
        .withUrl('/dashboard')
        .withAutomaticReconnect()
        .configureLogging(signalR.LogLevel.Warning)
        .build();

    function setStatus(state) {
        ui.status.textContent = state;
        ui.status.className = 'status status-' + state;
        ui.toggle.disabled = state !== 'connected';
    }

    // ------------------------------------------------------------ pushed samples

    connection.on('Sample', (sample) => {
        ui.sampleCount.textContent = String(samplesChart.add(sample.seq, sample.load));
        ui.connections.textContent = String(sample.connections);
        ui.streams.textContent = String(sample.streams);
        ui.sampleLoad.textContent = sample.load.toFixed(1);

        const row = document.createElement('tr');
        row.dataset.server = sample.server;
        row.dataset.seq = String(sample.seq);
        row.dataset.load = String(sample.load);
        row.dataset.connections = String(sample.connections);
        for (const text of [
            sample.server,
            String(sample.seq),
            new Date(sample.timeMs).toLocaleTimeString(),
            String(sample.connections),
            String(sample.streams),
            sample.load.toFixed(1),
        ]) {
            const cell = document.createElement('td');
            cell.textContent = text;
            row.appendChild(cell);
        }
        ui.recent.prepend(row);
        while (ui.recent.children.length > RECENT_ROWS) ui.recent.lastElementChild.remove();
    });

    // ---------------------------------------------------------- streamed readings

    let subscription = null;
    let paused = false;

    function setStreamState(state) {
        ui.streamState.textContent = state;
        ui.readingsChart.dataset.stream = state;
    }

    function startStream() {
        stopStream();
        const intervalMs = Number(ui.rate.value);
        ui.streamError.hidden = true;
        setStreamState('streaming');
        const mine = connection.stream('Readings', intervalMs).subscribe({
            next: (reading) => {
                if (subscription !== mine) return;
                ui.readingCount.textContent = String(readingsChart.add(reading.seq, reading.load));
                ui.readingLoad.textContent = reading.load.toFixed(1);
            },
            error: (err) => {
                if (subscription !== mine) return;
                subscription = null;
                setStreamState('stopped');
                ui.streamError.textContent = 'stream failed: ' + (err && err.message ? err.message : err);
                ui.streamError.hidden = false;
            },
            complete: () => {
                if (subscription !== mine) return;
                subscription = null;
                setStreamState('stopped');
            },
        });
        subscription = mine;
    }

    function stopStream() {
        const current = subscription;
        subscription = null;
        if (current) current.dispose();
    }

    ui.toggle.addEventListener('click', () => {
        paused = !paused;
        ui.toggle.textContent = paused ? 'Resume' : 'Pause';
        if (paused) {
            stopStream();
            setStreamState('paused');
        } else {
            startStream();
        }
    });

    ui.rate.addEventListener('change', () => {
        if (!paused && connection.state === signalR.HubConnectionState.Connected) startStream();
    });

    // ------------------------------------------------------------------ lifecycle

    connection.onreconnecting(() => {
        subscription = null; // the server ended it with the old connection
        setStatus('reconnecting');
        if (!paused) setStreamState('stopped');
    });
    connection.onreconnected(() => {
        setStatus('connected');
        if (!paused) startStream();
    });
    connection.onclose(() => {
        subscription = null;
        setStatus('disconnected');
        if (!paused) setStreamState('stopped');
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
        if (!paused) startStream();
    }
    start();
})();
