// Shell commands shown in Markdown: what test/docs-commands.test.ts and test/seed-examples.test.ts run.

export interface DocCommand {
  file: string;
  line: number;
  command: string;
}

/** The shell commands of the ```bash / ```sh blocks of a Markdown text; continuation lines joined, trailing comments dropped. */
export function docCommands(file: string, text: string): DocCommand[] {
  const out: DocCommand[] = [];
  const fence = /^```(?:bash|sh|shell)\s*\n([\s\S]*?)^```/gm;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    let line = text.slice(0, m.index).split('\n').length + 1;
    let pending = '';
    let start = line;
    for (const raw of m[1]!.split('\n')) {
      if (!pending) start = line;
      line++;
      if (raw.trimEnd().endsWith('\\')) {
        pending += `${raw.trimEnd().slice(0, -1)} `;
        continue;
      }
      // An aligned comment ("cmd   # what it does"): two spaces or more before the #.
      const command = (pending + raw).replace(/\s{2,}#\s.*$/, '').trim();
      pending = '';
      if (command && !command.startsWith('#')) out.push({ file, line: start, command });
    }
  }
  return out;
}
