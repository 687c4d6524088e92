// The `transfers` example executable; its commands are being built (issue 7).
import TransfersKit
