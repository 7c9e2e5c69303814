// The corpus file format (data/corpus.txt, eval/test_fortunes.txt): fortune(6)'s own format,
// documents separated by a line holding only "%".

/** Documents -> file text. A document may not hold a line that is only "%". */
export function serialiseCorpus(docs) {
  for (const d of docs) if (/^%$/m.test(d)) throw new Error('a document holds a "%" line');
  return docs.join('\n%\n') + '\n';
}

/** File text -> documents. */
export function parseCorpus(text) {
  return text
    .replace(/\n$/, '')
    .split('\n%\n')
    .filter((d) => d.length > 0);
}
