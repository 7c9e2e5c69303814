// The baseline for the overhead benchmark: a bare Node HTTP server that reads the request
// body and answers a fixed JSON body, with nothing else in the way.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const body = process.argv[3] ?? '{}';

createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
