%% Erlang/OTP versions of troupe's benchmark workloads (tests/bench/*.lua,
%% defined in issue #5), so that troupe's figures can be stated as ratios
%% against Erlang measured side by side on the same machine.
%%
%% Plain processes and plain messages (no gen_server), the way idiomatic
%% Erlang benchmarks are written: a synchronous call is
%%     Ref = make_ref(), Server ! {ping, self(), Ref, I},
%%     receive {Ref, R} -> ... end
%%
%% Each workload checks its results like the Lua version and prints one line
%% per measurement on stdout:  BENCH <workload> <value> <unit>
%% A failed check prints "CHECK FAILED: ..." on stderr and halts with 1.
%%
%% Run by scripts/bench-erlang:
%%     erl -noshell -pa DIR +S N:N -run bench main WORKLOAD [ARGS...]
%% (or call the exported functions from a shell; they return ok or raise).
-module(bench).
-export([main/1,
         pingpong/1, counting/1, threadring/1, callchain/1, spawn/1,
         parallel/2]).

%% the workload spawn/1 is exported under its own name: the BIF is called as
%% erlang:spawn/1
-compile({no_auto_import, [spawn/1]}).

-define(RING, 503).
-define(DEPTH, 10).
-define(CHECK(Cond, Fmt, Args), case Cond of true -> ok; false -> fail(Fmt, Args) end).

%% --- entry point --------------------------------------------------------

main([Workload | Args]) ->
    Code =
        try
            run(Workload, [list_to_integer(A) || A <- Args]),
            0
        catch
            throw:{check_failed, Msg} ->
                io:format(standard_error, "CHECK FAILED: ~s~n", [Msg]),
                1;
            Class:Reason:Stack ->
                io:format(standard_error, "bench ~s: ~p:~p~n~p~n",
                          [Workload, Class, Reason, Stack]),
                1
        end,
    halt(Code);
main([]) ->
    io:format(standard_error, "usage: bench main WORKLOAD [ARGS...]~n", []),
    halt(2).

run("pingpong", [])         -> pingpong(1000000);
run("pingpong", [N])        -> pingpong(N);
run("counting", [])         -> counting(10000000);
run("counting", [N])        -> counting(N);
run("threadring", [])       -> threadring(10000000);
run("threadring", [T])      -> threadring(T);
run("callchain", [])        -> callchain(100000);
run("callchain", [N])       -> callchain(N);
run("spawn", [])            -> spawn(1000000);
run("spawn", [N])           -> spawn(N);
run("parallel", [])         -> parallel(1000, 10000);
run("parallel", [P])        -> parallel(P, 10000);
run("parallel", [P, R])     -> parallel(P, R);
run(W, Args) -> erlang:error({unknown_workload, W, Args}).

%% --- helpers ------------------------------------------------------------

now_us() -> erlang:monotonic_time(microsecond).

%% events per second over Us microseconds
rate(Count, Us) -> Count * 1000000 / max(Us, 1).

report(Name, Value, Unit) ->
    io:format("BENCH ~s ~b ~s~n", [Name, round(Value), Unit]).

%% ?CHECK(Cond, Fmt, Args): the arguments of the message are built only when
%% the check fails (no allocation per checked reply in the hot loops)
fail(Fmt, Args) -> throw({check_failed, lists:flatten(io_lib:format(Fmt, Args))}).

%% Runs Fun in its own process and returns its result; a crash there (a
%% failed check included) is raised here, so the run fails instead of hanging.
in_process(Fun) ->
    Me = self(),
    {Pid, Mon} = spawn_monitor(fun() -> Me ! {self(), result, catch_check(Fun)} end),
    receive
        {Pid, result, {ok, Value}} ->
            erlang:demonitor(Mon, [flush]), Value;
        {Pid, result, {check_failed, Msg}} ->
            erlang:demonitor(Mon, [flush]), throw({check_failed, Msg});
        {'DOWN', Mon, process, Pid, Reason} ->
            erlang:error({workload_process_died, Reason})
    end.

catch_check(Fun) ->
    try {ok, Fun()}
    catch throw:{check_failed, Msg} -> {check_failed, Msg}
    end.

%% Peak resident set size of this OS process (VmHWM), in bytes; 0 if unknown.
vmhwm() ->
    case file:read_file("/proc/self/status") of
        {ok, Bin} ->
            case re:run(Bin, "VmHWM:\\s*(\\d+)\\s*kB", [{capture, all_but_first, list}]) of
                {match, [Kb]} -> list_to_integer(Kb) * 1024;
                nomatch -> 0
            end;
        _ -> 0
    end.

%% --- pingpong -----------------------------------------------------------
%% A client process makes N synchronous calls to a server process; the server
%% replies with its integer argument + 1; the client checks every reply.

pingpong(N) ->
    Server = erlang:spawn(fun ping_server/0),
    Us = in_process(fun() ->
                            T0 = now_us(),
                            ok = ping_client(Server, 1, N),
                            now_us() - T0
                    end),
    exit(Server, kill),
    report("pingpong", rate(N, Us), "calls/s"),
    ok.

ping_server() ->
    receive
        {ping, From, Ref, I} ->
            From ! {Ref, I + 1},
            ping_server()
    end.

ping_client(_Server, I, N) when I > N -> ok;
ping_client(Server, I, N) ->
    Ref = make_ref(),
    Server ! {ping, self(), Ref, I},
    receive
        {Ref, R} ->
            ?CHECK(R =:= I + 1, "pingpong: call ~b answered ~p, want ~b", [I, R, I + 1]),
            ping_client(Server, I + 1, N)
    end.

%% --- counting -----------------------------------------------------------
%% A producer sends N one-way {inc, 1} messages to a counter, then one
%% synchronous call reads the sum, which must be N.

counting(N) ->
    Counter = erlang:spawn(fun() -> counter(0) end),
    {Sum, Us} = in_process(fun() ->
                                   T0 = now_us(),
                                   produce(Counter, N),
                                   Ref = make_ref(),
                                   Counter ! {get, self(), Ref},
                                   receive {Ref, S} -> {S, now_us() - T0} end
                           end),
    exit(Counter, kill),
    ?CHECK(Sum =:= N, "counting: the counter read ~p, want ~b", [Sum, N]),
    report("counting", rate(N, Us), "msgs/s"),
    ok.

counter(Sum) ->
    receive
        {inc, K} -> counter(Sum + K);
        {get, From, Ref} -> From ! {Ref, Sum}, counter(Sum)
    end.

produce(_Counter, 0) -> ok;
produce(Counter, K) ->
    Counter ! {inc, 1},
    produce(Counter, K - 1).

%% --- threadring ---------------------------------------------------------
%% 503 processes in a ring pass an integer token, decremented at each hop, for
%% T hops (one-way sends). The process that receives 0 reports its number,
%% which must be T rem 503 + 1 (process 1 sends the first hop).

threadring(T) ->
    Me = self(),
    %% process 1 first, then 503 (whose next is 1) down to 2; process 1
    %% learns its next (process 2) last
    First = erlang:spawn(fun() -> ring_first(Me) end),
    Second = lists:foldl(fun(Id, Next) -> erlang:spawn(fun() -> ring_node(Id, Next, Me) end) end,
                         First, lists:seq(?RING, 2, -1)),
    First ! {link, Second},
    T0 = now_us(),
    First ! {start, T},
    Id = receive {done, I} -> I end,
    Us = now_us() - T0,
    Want = T rem ?RING + 1,
    ?CHECK(Id =:= Want, "threadring: token ended at process ~p, want ~b", [Id, Want]),
    report("threadring", rate(T, Us), "hops/s"),
    ok.

ring_first(Main) ->
    receive {link, Next} -> ok end,
    receive
        {start, 0} -> Main ! {done, 1};
        {start, T} -> Next ! T - 1
    end,
    ring_node(1, Next, Main).

ring_node(Id, Next, Main) ->
    receive
        0 -> Main ! {done, Id}, ring_node(Id, Next, Main);
        K -> Next ! K - 1, ring_node(Id, Next, Main)
    end.

%% --- callchain ----------------------------------------------------------
%% Processes A1..A10; a call to Ai calls A(i+1) and replies with its result
%% + 1, A10 replies 0. A client makes N calls to A1, each must return 9. The
%% rate counts client calls (each is a chain of 10 nested calls).

callchain(N) ->
    %% built from A10 (no next) back to A1
    Head = lists:foldl(fun(_, Next) -> erlang:spawn(fun() -> link_loop(Next) end) end,
                       none, lists:seq(1, ?DEPTH)),
    {Done, Us} = in_process(fun() ->
                                    T0 = now_us(),
                                    chain_client(Head, 1, N),
                                    {N, now_us() - T0}
                            end),
    ?CHECK(Done =:= N, "callchain: ~p calls checked, want ~b", [Done, N]),
    report("callchain", rate(N, Us), "calls/s"),
    ok.

link_loop(none) ->
    receive
        {get, From, Ref} -> From ! {Ref, 0}, link_loop(none)
    end;
link_loop(Next) ->
    receive
        {get, From, Ref} ->
            R = call_get(Next),
            From ! {Ref, R + 1},
            link_loop(Next)
    end.

call_get(Pid) ->
    Ref = make_ref(),
    Pid ! {get, self(), Ref},
    receive {Ref, R} -> R end.

chain_client(_Head, I, N) when I > N -> ok;
chain_client(Head, I, N) ->
    R = call_get(Head),
    ?CHECK(R =:= ?DEPTH - 1, "callchain: call ~b answered ~p, want ~b", [I, R, ?DEPTH - 1]),
    chain_client(Head, I + 1, N).

%% --- spawn --------------------------------------------------------------
%% Spawn N processes that wait in receive (each holds its number I); report
%% the spawn rate, the growth of erlang:memory(total) per process and the
%% growth of peak RSS (VmHWM) per process. Then call each once (a synchronous
%% call, one at a time, like spawn.lua: the reply to ping(K) is K + I, here
%% K = I) and report that rate; then send every process a request first and
%% collect all the replies (scatter/gather) and report that rate too.

spawn(N) ->
    erlang:garbage_collect(),
    Mem0 = erlang:memory(total),
    Hwm0 = vmhwm(),
    T0 = now_us(),
    Pids = spawn_idle(1, N, []),
    settle(),                           % every new process has run to its receive
    T1 = now_us(),
    Mem1 = erlang:memory(total),
    Hwm1 = vmhwm(),
    Alive = erlang:system_info(process_count),
    ?CHECK(Alive >= N, "spawn: ~b processes alive, want ~b", [Alive, N]),

    T2 = now_us(),
    ok = call_each(Pids, N),
    T3 = now_us(),

    T4 = now_us(),
    Ref = make_ref(),
    Me = self(),
    scatter(Pids, Me, Ref),
    ok = gather(Ref, N, 0, 0),
    T5 = now_us(),

    [exit(P, kill) || P <- Pids],
    report("spawn", rate(N, T1 - T0), "actors/s"),
    report("spawn.mem_per_actor", (Mem1 - Mem0) / N, "B"),
    report("spawn.rss_per_actor", (Hwm1 - Hwm0) / N, "B"),
    report("spawn.call_all", rate(N, T3 - T2), "calls/s"),
    report("spawn.scatter_gather", rate(N, T5 - T4), "calls/s"),
    io:format(standard_error, "spawn: ~.3f us per process, ~b B (erlang:memory) "
              "and ~b B (VmHWM) per process~n",
              [(T1 - T0) / N, round((Mem1 - Mem0) / N), round((Hwm1 - Hwm0) / N)]),
    ok.

%% the list comes out reversed: process N first
spawn_idle(I, N, Acc) when I > N -> Acc;
spawn_idle(I, N, Acc) ->
    spawn_idle(I + 1, N, [erlang:spawn(fun() -> idle(I) end) | Acc]).

idle(I) ->
    receive
        {ping, From, Ref, K} -> From ! {Ref, K + I}, idle(I);
        {ping_id, From, Ref, K} -> From ! {Ref, I, K + I}, idle(I)
    end.

%% yield until no process is waiting to run
settle() ->
    erlang:yield(),
    case erlang:statistics(total_run_queue_lengths_all) of
        0 -> ok;
        _ -> settle()
    end.

%% Pids holds process N first, process 1 last
call_each([], _) -> ok;
call_each([Pid | Rest], I) ->
    Ref = make_ref(),
    Pid ! {ping, self(), Ref, I},
    receive
        {Ref, R} ->
            ?CHECK(R =:= 2 * I, "spawn: process ~b answered ~p, want ~b", [I, R, 2 * I])
    end,
    call_each(Rest, I - 1).

scatter([], _Me, _Ref) -> ok;
scatter([Pid | Rest], Me, Ref) ->
    Pid ! {ping_id, Me, Ref, 1},
    scatter(Rest, Me, Ref).

%% every reply {Ref, I, 1 + I}; all N distinct numbers 1..N must come back
gather(_Ref, 0, Count, Sum) ->
    ?CHECK(Sum =:= Count * (Count + 1) div 2, "spawn: replies summed to ~b", [Sum]),
    ok;
gather(Ref, Left, Count, Sum) ->
    receive
        {Ref, I, R} ->
            ?CHECK(R =:= I + 1, "spawn: process ~b answered ~p, want ~b", [I, R, I + 1]),
            gather(Ref, Left - 1, Count + 1, Sum + I)
    end.

%% --- parallel -----------------------------------------------------------
%% P independent pingpong pairs make R round trips each, all at once. Each
%% pair is a client and the server it spawned. The main process tells every
%% client to go; each client makes R calls ping(I) to its server, checks every
%% reply is I + 1 and reports its count. The rate counts round trips (P * R)
%% over the wall time from the first go to the last report.

parallel(P, R) ->
    ?CHECK(P >= 1 andalso R >= 1, "parallel: need at least 1 pair and 1 round trip (got ~b, ~b)", [P, R]),
    Me = self(),
    Clients = [spawn_monitor(fun() -> pair_client(Me, Id) end) || Id <- lists:seq(1, P)],
    %% every client has spawned its server before the clock starts
    [receive {ready, Pid} -> ok end || {Pid, _} <- Clients],
    T0 = now_us(),
    [Pid ! {go, R} || {Pid, _} <- Clients],
    Total = collect(P, R, #{}, 0),
    Us = now_us() - T0,
    [begin erlang:demonitor(M, [flush]), exit(Pid, kill) end || {Pid, M} <- Clients],
    ?CHECK(Total =:= P * R, "parallel: ~b round trips in all, want ~b", [Total, P * R]),
    report("parallel", rate(Total, Us), "calls/s"),
    ok.

pair_client(Main, Id) ->
    Server = spawn_link(fun ping_server/0),
    Main ! {ready, self()},
    receive {go, R} -> ok end,
    case catch_check(fun() -> ping_client(Server, 1, R) end) of
        {ok, ok} -> Main ! {done, Id, R};
        {check_failed, Msg} -> Main ! {failed, Id, Msg}
    end,
    receive stop -> ok end.

collect(0, _R, _Seen, Total) -> Total;
collect(Left, R, Seen, Total) ->
    receive
        {done, Id, Count} ->
            ?CHECK(not maps:is_key(Id, Seen), "parallel: pair ~b reported twice", [Id]),
            ?CHECK(Count =:= R, "parallel: pair ~b reported ~p round trips, want ~b", [Id, Count, R]),
            collect(Left - 1, R, Seen#{Id => true}, Total + Count);
        {failed, Id, Msg} ->
            fail("parallel: pair ~b failed: ~s", [Id, Msg]);
        {'DOWN', _, process, _, Reason} ->
            fail("parallel: a client died: ~p", [Reason])
    end.
