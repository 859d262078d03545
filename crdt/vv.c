#include "vv.h"
