#ifndef SHALE_CLZ4_SHIM_H
#define SHALE_CLZ4_SHIM_H
#include <lz4.h>
#endif
