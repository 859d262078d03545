#include "query.h"
