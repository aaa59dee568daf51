// Compile-time checks of the generated typings (examples/js/typings): typings.test.mjs runs
// `tsc --strict --noEmit` over them and this file. Every `@ts-expect-error` line must fail to
// type-check, so the typings are proven to reject wrong names, argument and result types.

import { HubConnectionBuilder, Subject } from "@microsoft/signalr";
import type { IStreamResult } from "@microsoft/signalr";

import { createBroadcastHubProxy, registerBroadcastHubClient } from "../typings/BroadcastHub.js";
import { createTestHubProxy, registerTestHubClient } from "../typings/TestHub.js";
import type { ComplexObject, CustomObject, TestHubClient } from "../typings/TestHub.js";

const connection = new HubConnectionBuilder().withUrl("http://localhost/testhub").build();
const hub = createTestHubProxy(connection);

export async function calls(): Promise<void> {
    const echoed: string = await hub.echo("x");
    const quotient: number = await hub.divide(1, 2);
    const complex: ComplexObject = await hub.sendComplexObject();
    const bytes: string | Uint8Array = complex.ByteArray;
    const when: string | Date = complex.DateTime;
    const ints: number[] = complex.IntArray;
    const items: IStreamResult<string> = hub.stream();
    const numbers: IStreamResult<number> = hub.emptyStream();
    const joined: string = await hub.streamingConcat(new Subject<string>());
    const header: string | null = await hub.getHeader("Accept");
    const nothing: void = await hub.sendCustomObject({ Name: "n", Value: 1 });
    void [echoed, quotient, bytes, when, ints, items, numbers, joined, header, nothing];

    // @ts-expect-error: Echo takes a string
    await hub.echo(42);
    // @ts-expect-error: payload properties have their wire (PascalCase) names
    await hub.sendCustomObject({ name: "n", value: 1 });
    // @ts-expect-error: no such hub method
    await hub.noSuchMethod();
    // @ts-expect-error: the context is injected, not sent
    await hub.getCallerConnectionId("connection id");
    // @ts-expect-error: Echo returns a string
    const wrong: number = await hub.echo("x");
    // @ts-expect-error: an upload takes a stream, not an array
    await hub.streamingConcat(["a", "b"]);
    // @ts-expect-error: a stream is not a promise
    await hub.stream().then(() => undefined);
    void wrong;
}

const receiver: TestHubClient = {
    message(message: string) {
        void message;
    },
    customObject(value: CustomObject) {
        void value;
    },
    streamCanceled() {},
    result: () => 10,
};
const registration: { dispose(): void } = registerTestHubClient(connection, receiver);
registration.dispose();
// A client result may also come asynchronously.
registerTestHubClient(connection, { ...receiver, result: async () => 10 });
// @ts-expect-error: the client result is a number
registerTestHubClient(connection, { ...receiver, result: () => "ten" });
// @ts-expect-error: every client method needs a handler
registerTestHubClient(connection, { message() {} });

const broadcast = createBroadcastHubProxy(connection);
export async function broadcasts(): Promise<void> {
    await broadcast.sendToGroups(["a", "b"], "hello");
    // @ts-expect-error: the groups are an array
    await broadcast.sendToGroups("a", "hello");
    const answer: string = await broadcast.askCaller("why?");
    void answer;
}
registerBroadcastHubClient(connection, {
    receive: (message: string) => void message,
    answer: (question: string) => question.toUpperCase(),
    joined: (group: string, user: string) => void [group, user],
    left: (group: string, user: string) => void [group, user],
});
