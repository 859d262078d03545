#include "hlc.h"
