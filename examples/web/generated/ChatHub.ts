// provisional
import type { HubConnection, IStreamResult } from "@microsoft/signalr";
export type Mark = { epoch: string, offset: number, };
export type Posted = { offset: number, name: string, text: string, };
export type Resumed = { recovered: boolean, epoch: string, offset: number, };
export type RoomItem = Resumed | Posted;
export type RoomView = { members: Array<string>, recent: Array<Posted>, position: Mark, };
export interface ChatHub {
  join(room: string): Promise<RoomView>;
  leave(room: string): Promise<void>;
  sendMessage(room: string, text: string): Promise<void>;
  subscribe(room: string, from: Mark | null): IStreamResult<RoomItem>;
}
export function createChatHubProxy(connection: HubConnection): ChatHub {
  return {
    join: (room) => connection.invoke<RoomView>("Join", room),
    leave: (room) => connection.invoke<void>("Leave", room),
    sendMessage: (room, text) => connection.invoke<void>("SendMessage", room, text),
    subscribe: (room, from) => connection.stream<RoomItem>("Subscribe", room, from),
  };
}
export interface ChatClient {
  userJoined(room: string, name: string): void | Promise<void>;
  userLeft(room: string, name: string): void | Promise<void>;
}
export function registerChatClient(connection: HubConnection, receiver: ChatClient): { dispose(): void } {
  connection.on("UserJoined", (room: string, name: string) => receiver.userJoined(room, name));
  connection.on("UserLeft", (room: string, name: string) => receiver.userLeft(room, name));
  return { dispose: () => {} };
}
