// Package proc runs programs as child processes of a test, or of a program such as
// kohaku-bench: Kohaku's own binaries, built once per test binary, and others such as
// nats-server, HAProxy or a shell script.
//
// The contract:
//
//   - A Binary builds one main package with go build at most once per test binary, on
//     first use, into a temporary directory that TestMain deletes with Remove. GoBuild is
//     the same build for a caller that chooses the output path itself.
//   - Start (for tests) and Spawn (for everything else) start an *exec.Cmd the caller
//     prepared: what differs between callers (path, arguments, environment, standard
//     input, SysProcAttr) stays theirs. CleanEnv gives an environment without a
//     developer's KOHAKU_ settings; FreeAddr and PickAddr give addresses to listen on.
//     Standard output and error that the caller left nil are kept in memory, in the order
//     written, for Output and WaitLog.
//   - Every wait (Wait, Stop, WaitHTTP, WaitTCP, WaitLog) takes a timeout. A readiness
//     wait returns early, with an error that wraps the exit error, when the program ends
//     first; each returns a *TimeoutError, or an error wrapping one, when time runs out.
//     Only Stop kills a program that is late.
//   - Start fails the test when the program cannot start, kills the program if it still
//     runs when the test ends, and then logs its output if the test failed.
//   - A Process is safe for concurrent use, and the package keeps no state of its own.
//
// It depends on the standard library only, so that the tests of every module may use it:
// the receiver's module must not gain third-party dependencies.
package proc
