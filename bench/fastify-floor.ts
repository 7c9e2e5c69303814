// A second baseline for the overhead benchmark: the cheapest Fastify route that parses the JSON
// body and answers the same envelope. It shows how much of the full stack's cost is the HTTP
// framework itself, before any isomodel code runs.
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const sample = JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>;

const app = Fastify();
app.post('/', async (req) => ({ ...sample, timestamp: new Date().toISOString(), request_id: req.id }));
await app.listen({ port, host: '127.0.0.1' });
process.stdout.write('ready\n');
