#ifndef BALLAST_CSQLITE_SHIM_H
#define BALLAST_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
