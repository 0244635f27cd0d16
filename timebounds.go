package tokenward

import (
	"math"
	"time"
)

// MinTime and MaxTime bound the times a store keeps: both keep Unix
// nanoseconds in 64 bits, from 1677-09-21 to 2262-04-11. A time outside
// would be stored wrapped to another date.
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)
