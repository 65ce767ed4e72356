// The message type (fko_message.c): a decimal fko_message_type_t code, at most 2 digits.

import { SPA_LIMITS } from '../limits.js';
import { MESSAGE_TYPES, type MessageType } from '../types.js';

const TYPE_RE = new RegExp(`^[0-9]{1,${SPA_LIMITS.maxMessageTypeSize}}$`);

export function messageTypeCode(t: MessageType): number {
  return MESSAGE_TYPES.indexOf(t);
}

export function parseMessageType(text: string): MessageType | undefined {
  return TYPE_RE.test(text) ? MESSAGE_TYPES[Number(text)] : undefined;
}
