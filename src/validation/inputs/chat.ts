// Chat inputs: OpenAI-style messages. Content is text, or a list of parts of which the text
// parts are kept (images in chat are not taken: a task that wants images declares input_type image).
import { IsoError } from '../../errors.js';
import { codePoints } from './text.js';

export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];
export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
}

export interface ChatRule {
  maxMessages: number;
  /** Characters over all messages' content. */
  maxLength: number;
}

function contentText(c: unknown, field: string): string {
  if (typeof c === 'string') return c;
  if (c === null || c === undefined) return '';
  if (Array.isArray(c)) {
    return c
      .map((p, i) => {
        if (typeof p !== 'object' || p === null)
          throw new IsoError('INVALID_INPUT', `${field}[${i}] must be a content part {type, text}`);
        const part = p as { type?: unknown; text?: unknown };
        if (part.type === 'text' && typeof part.text === 'string') return part.text;
        throw new IsoError(
          'INVALID_INPUT',
          `${field}[${i}] is a ${JSON.stringify(part.type)?.slice(0, 30)} part; only text parts are taken here`,
        );
      })
      .join('');
  }
  throw new IsoError('INVALID_INPUT', `${field} must be text or a list of text parts`);
}

/** `{messages: [...]}` or the list itself. */
export function validateChat(raw: unknown, rule: ChatRule, field: string): { messages: ChatMessage[] } {
  const list = Array.isArray(raw)
    ? raw
    : typeof raw === 'object' && raw !== null
      ? (raw as { messages?: unknown }).messages
      : undefined;
  if (!Array.isArray(list))
    throw new IsoError('INVALID_INPUT', `${field} must be a list of messages {role, content} (or {messages: [...]})`);
  if (list.length === 0) throw new IsoError('INVALID_INPUT', `${field} holds no message`);
  if (list.length > rule.maxMessages)
    throw new IsoError('INPUT_TOO_LONG', `${field} holds ${list.length} messages; the limit is ${rule.maxMessages}`, {
      messages: list.length,
      max_messages: rule.maxMessages,
    });
  let total = 0;
  const messages = list.map((m, i): ChatMessage => {
    const at = `${field}.messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new IsoError('INVALID_INPUT', `${at} must be an object {role, content}`);
    const { role, content, name } = m as { role?: unknown; content?: unknown; name?: unknown };
    if (typeof role !== 'string' || !(CHAT_ROLES as readonly string[]).includes(role))
      throw new IsoError('INVALID_INPUT', `${at}.role must be one of ${CHAT_ROLES.join(', ')}`);
    const text = contentText(content, `${at}.content`);
    if (text.includes('\u0000')) throw new IsoError('INVALID_INPUT', `${at}.content contains a NUL character`);
    total += codePoints(text);
    if (total > rule.maxLength)
      throw new IsoError('INPUT_TOO_LONG', `${field} has more than ${rule.maxLength} characters of content`, {
        max_length: rule.maxLength,
      });
    return typeof name === 'string'
      ? { role: role as ChatRole, content: text, name: name.slice(0, 64) }
      : { role: role as ChatRole, content: text };
  });
  return { messages };
}
