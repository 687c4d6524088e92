// Module BallastWire: see docs/architecture.md for its responsibility.
