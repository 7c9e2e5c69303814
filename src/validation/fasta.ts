// Reads sequences from the formats biologists hand us: FASTA, or plain one-per-line text.
export interface NamedSequence {
  id: string;
  description: string;
  sequence: string;
}

export function parseFasta(text: string): NamedSequence[] {
  const out: NamedSequence[] = [];
  let current: NamedSequence | null = null;
  const parts: string[] = [];
  const close = (): void => {
    if (current) out.push({ ...current, sequence: parts.join('') });
    parts.length = 0;
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';')) continue;
    if (line.startsWith('>')) {
      close();
      const header = line.slice(1).trim();
      const space = header.search(/\s/);
      current = {
        id: space === -1 ? header : header.slice(0, space),
        description: space === -1 ? '' : header.slice(space + 1).trim(),
        sequence: '',
      };
    } else {
      if (!current) throw new Error('FASTA data before the first ">" header');
      parts.push(line.replace(/\s+/g, ''));
    }
  }
  close();
  return out;
}

/** FASTA when the text starts with '>', else one sequence per non-empty line. */
export function parseSequences(text: string): NamedSequence[] {
  if (text.trimStart().startsWith('>')) return parseFasta(text);
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((sequence, i) => ({ id: `seq${i + 1}`, description: '', sequence }));
}
