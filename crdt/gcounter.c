#include "gcounter.h"
