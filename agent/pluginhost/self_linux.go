package pluginhost

// RunningExecutable is the path that names the running executable itself,
// for Config.Self with SelfRunning; empty where there is none.
const RunningExecutable = "/proc/self/exe"
