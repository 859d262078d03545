#include "orset.h"
