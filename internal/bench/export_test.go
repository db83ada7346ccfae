package bench

// Bridges for the external tests.
var (
	ParseProcStat    = parseProcStat
	MapLocalhost     = mapLocalhost
	ParseMachineBusy = parseMachineBusy
)
