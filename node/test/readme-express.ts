import express from 'express';
import { Limiter, clientKey } from 'cellgate';
import { rateLimit } from 'cellgate/express';

declare global {
  namespace Express {
    interface Request {
      user?: { id: string }; // set by your authentication middleware
    }
  }
}
// Yours (passport, a session or JWT check): verifies the credential and sets req.user.
declare const authenticate: express.RequestHandler;

const app = express();
app.use(authenticate); // before the limiter, so that the key can be who the client proved to be
app.use(rateLimit({
  limiter: new Limiter('100/minute'), // 429 + Retry-After + RateLimit headers + JSON
  // The authenticated user, else the client's address (IPv6 grouped by /56). Never a value
  // the client picks itself, such as an unchecked x-api-key header: it would pick a fresh
  // bucket per request.
  key: (req) => (req.user ? `user:${req.user.id}` : clientKey(req.ip ?? '')),
}));
