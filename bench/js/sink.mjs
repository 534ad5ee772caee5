// A receiver that answers every OTLP/HTTP request with 200 and an empty
// body (a valid empty Export*ServiceResponse), in its own process so its
// work is not measured. Prints its port on stdout.
import { createServer } from 'node:http';

let requests = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    requests++;
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('message', () => process.send?.({ requests, bytes }));
