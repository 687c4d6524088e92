// Module BallastHTTP2: see docs/architecture.md for its responsibility.
