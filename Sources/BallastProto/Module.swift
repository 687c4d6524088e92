// Module BallastProto: see docs/architecture.md for its responsibility.
