// oauth2-mock-server (npm) on 127.0.0.1, port 0, for tests/auth.rs.
// Tokens live TOKEN_TTL seconds (default 2): both the `expires_in` of the
// token response and the JWT's `exp`. Prints the issuer URL on the first
// line, then one line per token response: `token GRANT_TYPE`.
import { OAuth2Server } from 'oauth2-mock-server';

const ttl = Number(process.env.TOKEN_TTL ?? '2');
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token) => {
  token.payload.exp = token.payload.iat + ttl;
});
server.service.on('beforeResponse', (response, req) => {
  response.body.expires_in = ttl;
  console.log(`token ${req.body.grant_type}`);
});
await server.start(0, '127.0.0.1');
console.log(server.issuer.url);
process.on('SIGTERM', async () => {
  await server.stop();
  process.exit(0);
});
