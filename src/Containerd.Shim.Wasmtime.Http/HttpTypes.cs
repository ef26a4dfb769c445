using System.Text;
using static Containerd.Shim.Wasmtime.Http.ComponentApi;
using static Containerd.Shim.Wasmtime.Http.ProxyHost;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>The host side of wasi:http/types: fields, the incoming request and body, the outgoing response.</summary>
internal static unsafe class HttpTypes
{
    public static void Define(IntPtr i)
    {
        Res(i, "fields", ResourceTypes.Fields);
        Res(i, "headers", ResourceTypes.Fields);
        Res(i, "trailers", ResourceTypes.Fields);
        Res(i, "incoming-request", ResourceTypes.IncomingRequest);
        Res(i, "incoming-body", ResourceTypes.IncomingBody);
        Res(i, "outgoing-request", ResourceTypes.OutgoingRequest);
        Res(i, "outgoing-body", ResourceTypes.OutgoingBody);
        Res(i, "response-outparam", ResourceTypes.ResponseOutparam);
        Res(i, "outgoing-response", ResourceTypes.OutgoingResponse);
        Res(i, "incoming-response", ResourceTypes.IncomingResponse);
        Res(i, "future-incoming-response", ResourceTypes.FutureIncomingResponse);
        Res(i, "request-options", ResourceTypes.RequestOptions);
        Res(i, "future-trailers", ResourceTypes.FutureTrailers);
        Res(i, "input-stream", ResourceTypes.InputStream);
        Res(i, "output-stream", ResourceTypes.OutputStream);
        Res(i, "pollable", ResourceTypes.Pollable);
        Res(i, "io-error", ResourceTypes.IoError);

        // fields
        Func(i, "[constructor]fields", (r, c, a, res) => res[0] = NewFields(c, r, new Fields([], immutable: false)));
        Func(i, "[static]fields.from-list", (r, c, a, res) =>
        {
            var entries = new List<KeyValuePair<string, byte[]>>();
            foreach (var entry in ReadList(a[0]))
            {
                var pair = ReadList(entry);
                var name = ReadString(pair[0]);
                if (!ValidName(name))
                {
                    res[0] = Err(Variant("invalid-syntax"));
                    return;
                }
                entries.Add(new(name, ReadBytes(pair[1])));
            }
            res[0] = Ok(NewFields(c, r, new Fields(entries, immutable: false)));
        });
        Func(i, "[method]fields.get", (r, c, a, res) =>
        {
            var name = ReadString(a[1]);
            res[0] = List([.. FieldsOf(r, c, a[0]).Entries.Where(e => Same(e.Key, name)).Select(e => ByteList(e.Value))]);
        });
        Func(i, "[method]fields.has", (r, c, a, res) =>
        {
            var name = ReadString(a[1]);
            res[0] = Bool(FieldsOf(r, c, a[0]).Entries.Any(e => Same(e.Key, name)));
        });
        Func(i, "[method]fields.set", (r, c, a, res) =>
        {
            var fields = FieldsOf(r, c, a[0]);
            var name = ReadString(a[1]);
            if (Refuse(fields, name) is { } error)
            {
                res[0] = error;
                return;
            }
            fields.Entries.RemoveAll(e => Same(e.Key, name));
            foreach (var value in ReadList(a[2]))
            {
                fields.Entries.Add(new(name, ReadBytes(value)));
            }
            res[0] = Ok();
        });
        Func(i, "[method]fields.delete", (r, c, a, res) =>
        {
            var fields = FieldsOf(r, c, a[0]);
            var name = ReadString(a[1]);
            if (Refuse(fields, name) is { } error)
            {
                res[0] = error;
                return;
            }
            fields.Entries.RemoveAll(e => Same(e.Key, name));
            res[0] = Ok();
        });
        Func(i, "[method]fields.append", (r, c, a, res) =>
        {
            var fields = FieldsOf(r, c, a[0]);
            var name = ReadString(a[1]);
            if (Refuse(fields, name) is { } error)
            {
                res[0] = error;
                return;
            }
            fields.Entries.Add(new(name, ReadBytes(a[2])));
            res[0] = Ok();
        });
        Func(i, "[method]fields.entries", (r, c, a, res) =>
            res[0] = List([.. FieldsOf(r, c, a[0]).Entries.Select(e => Tuple([ComponentApi.String(e.Key), ByteList(e.Value)]))]));
        Func(i, "[method]fields.clone", (r, c, a, res) =>
            res[0] = NewFields(c, r, new Fields([.. FieldsOf(r, c, a[0]).Entries], immutable: false)));

        // incoming-request
        Func(i, "[method]incoming-request.method", (r, c, a, res) => res[0] = Method(Request(r, c, a[0]).Method));
        Func(i, "[method]incoming-request.path-with-query", (r, c, a, res) => res[0] = Option(ComponentApi.String(Request(r, c, a[0]).PathWithQuery)));
        Func(i, "[method]incoming-request.scheme", (r, c, a, res) => res[0] = Option(Scheme(Request(r, c, a[0]).Scheme)));
        Func(i, "[method]incoming-request.authority", (r, c, a, res) =>
            res[0] = Option(Request(r, c, a[0]).Authority is { } authority ? ComponentApi.String(authority) : null));
        Func(i, "[method]incoming-request.headers", (r, c, a, res) => res[0] = Resource(c, ResourceTypes.Fields, r.Table.Add(Request(r, c, a[0]).Headers)));
        Func(i, "[method]incoming-request.consume", (r, c, a, res) =>
        {
            var request = Request(r, c, a[0]);
            if (request.Consumed)
            {
                res[0] = Err();
                return;
            }
            request.Consumed = true;
            res[0] = Ok(Resource(c, ResourceTypes.IncomingBody, r.Table.Add(new IncomingBody(request.Body, request.Trailers))));
        });

        // incoming-body (a request's or a response's) and its trailers
        Func(i, "[method]incoming-body.stream", (r, c, a, res) =>
        {
            var body = r.Table.Get<IncomingBody>(ReadRep(c, a[0]));
            if (body.StreamTaken)
            {
                res[0] = Err();
                return;
            }
            body.StreamTaken = true;
            res[0] = Ok(Resource(c, ResourceTypes.InputStream, r.Table.Add(new InputStream(body.Body, body.BetweenBytes))));
        });
        Func(i, "[static]incoming-body.finish", (r, c, a, res) =>
        {
            var rep = ReadRep(c, a[0]);
            var body = r.Table.Get<IncomingBody>(rep);
            r.Table.Remove(rep);
            res[0] = Resource(c, ResourceTypes.FutureTrailers, r.Table.Add(new FutureTrailers(body.Finish())));
        });
        Func(i, "[method]future-trailers.subscribe", (r, c, a, res) =>
            res[0] = Resource(c, ResourceTypes.Pollable, r.Table.Add(new Pollable(r.Table.Get<FutureTrailers>(ReadRep(c, a[0])).Trailers))));
        Func(i, "[method]future-trailers.get", (r, c, a, res) =>
        {
            var future = r.Table.Get<FutureTrailers>(ReadRep(c, a[0]));
            res[0] = GetFuture(future, future.Trailers,
                trailers => Ok(Option(trailers is { } t ? NewFields(c, r, t) : null)),
                failure => Err(ErrorFor(failure).ToVal()));
        });

        // outgoing-response
        Func(i, "[constructor]outgoing-response", (r, c, a, res) =>
        {
            // An own handle moves to the host when read: read it once.
            var rep = ReadRep(c, a[0]);
            var headers = r.Table.Get<Fields>(rep);
            r.Table.Remove(rep);
            res[0] = Resource(c, ResourceTypes.OutgoingResponse, r.Table.Add(new OutgoingResponse(headers)));
        });
        Func(i, "[method]outgoing-response.status-code", (r, c, a, res) => res[0] = U16(r.Table.Get<OutgoingResponse>(ReadRep(c, a[0])).Status));
        Func(i, "[method]outgoing-response.set-status-code", (r, c, a, res) =>
        {
            var status = (ushort)a[1].A;
            if (status is < 100 or > 999)
            {
                res[0] = Err();
                return;
            }
            r.Table.Get<OutgoingResponse>(ReadRep(c, a[0])).Status = status;
            res[0] = Ok();
        });
        Func(i, "[method]outgoing-response.headers", (r, c, a, res) =>
            res[0] = Resource(c, ResourceTypes.Fields, r.Table.Add(r.Table.Get<OutgoingResponse>(ReadRep(c, a[0])).Headers)));
        Func(i, "[method]outgoing-response.body", (r, c, a, res) =>
        {
            var response = r.Table.Get<OutgoingResponse>(ReadRep(c, a[0]));
            if (response.BodyTaken)
            {
                res[0] = Err();
                return;
            }
            response.BodyTaken = true;
            var body = new OutgoingBody(new OutputStream(new ResponseBodyStream(r)), finish: r.SetTrailers);
            res[0] = Ok(Resource(c, ResourceTypes.OutgoingBody, r.Table.Add(body)));
        });
        Func(i, "[method]outgoing-body.write", (r, c, a, res) =>
        {
            var body = r.Table.Get<OutgoingBody>(ReadRep(c, a[0]));
            if (body.StreamTaken)
            {
                res[0] = Err();
                return;
            }
            body.StreamTaken = true;
            res[0] = Ok(Resource(c, ResourceTypes.OutputStream, r.Table.Add(body.Stream)));
        });
        Func(i, "[static]outgoing-body.finish", (r, c, a, res) =>
        {
            var rep = ReadRep(c, a[0]);
            var body = r.Table.Get<OutgoingBody>(rep);
            r.Table.Remove(rep);
            Fields? trailers = null;
            if (OptionValue(a[1]) is var handle && handle != null)
            {
                var trailersRep = ReadRep(c, *handle);
                trailers = r.Table.Get<Fields>(trailersRep);
                r.Table.Remove(trailersRep);
            }
            try
            {
                body.Finish(trailers);
                res[0] = Ok();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                res[0] = Err(new ErrorCode("connection-terminated").ToVal());
            }
        });
        Func(i, "[static]response-outparam.set", (r, c, a, res) =>
        {
            r.Table.Remove(ReadRep(c, a[0]));
            var result = a[1];
            var value = ResultValue(result);
            if (ResultIsOk(result))
            {
                var rep = ReadRep(c, *value);
                var response = r.Table.Get<OutgoingResponse>(rep);
                r.Table.Remove(rep);
                r.SetResponse(response);
            }
            else
            {
                r.SetError($"the component answered with error {CaseName(*value)}");
            }
        });

        // outgoing-request: built by the guest, sent by wasi:http/outgoing-handler (OutgoingHttp)
        Func(i, "[constructor]outgoing-request", (r, c, a, res) =>
        {
            var rep = ReadRep(c, a[0]);
            var headers = r.Table.Get<Fields>(rep);
            r.Table.Remove(rep);
            res[0] = Resource(c, ResourceTypes.OutgoingRequest, r.Table.Add(new OutgoingRequest(headers)));
        });
        Func(i, "[method]outgoing-request.body", (r, c, a, res) =>
        {
            var request = r.Table.Get<OutgoingRequest>(ReadRep(c, a[0]));
            if (request.Body is not null)
            {
                res[0] = Err();
                return;
            }
            var sink = new RequestBodySink();
            request.BodySink = sink;
            request.Body = new OutgoingBody(new OutputStream(sink), finish: _ => sink.Finish(), abandon: sink.Abandon);
            res[0] = Ok(Resource(c, ResourceTypes.OutgoingBody, r.Table.Add(request.Body)));
        });
        Func(i, "[method]outgoing-request.method", (r, c, a, res) => res[0] = Method(Outgoing(r, c, a[0]).Method));
        Func(i, "[method]outgoing-request.set-method", (r, c, a, res) =>
        {
            Outgoing(r, c, a[0]).Method = ReadMethod(a[1]);
            res[0] = Ok();
        });
        Func(i, "[method]outgoing-request.path-with-query", (r, c, a, res) => res[0] = OptionalString(Outgoing(r, c, a[0]).PathWithQuery));
        Func(i, "[method]outgoing-request.set-path-with-query", (r, c, a, res) =>
        {
            Outgoing(r, c, a[0]).PathWithQuery = ReadOptionalString(a[1]);
            res[0] = Ok();
        });
        Func(i, "[method]outgoing-request.scheme", (r, c, a, res) =>
            res[0] = Option(Outgoing(r, c, a[0]).Scheme is { } scheme ? Scheme(scheme) : null));
        Func(i, "[method]outgoing-request.set-scheme", (r, c, a, res) =>
        {
            var value = OptionValue(a[1]);
            Outgoing(r, c, a[0]).Scheme = value == null ? null : CaseName(*value) == "other" ? ReadString(*Payload(*value)) : CaseName(*value).ToLowerInvariant();
            res[0] = Ok();
        });
        Func(i, "[method]outgoing-request.authority", (r, c, a, res) => res[0] = OptionalString(Outgoing(r, c, a[0]).Authority));
        Func(i, "[method]outgoing-request.set-authority", (r, c, a, res) =>
        {
            Outgoing(r, c, a[0]).Authority = ReadOptionalString(a[1]);
            res[0] = Ok();
        });
        Func(i, "[method]outgoing-request.headers", (r, c, a, res) =>
            res[0] = Resource(c, ResourceTypes.Fields, r.Table.Add(Outgoing(r, c, a[0]).Headers)));
        Func(i, "[constructor]request-options", (r, c, a, res) => res[0] = Resource(c, ResourceTypes.RequestOptions, r.Table.Add(new RequestOptions())));
        DefineTimeout(i, "connect-timeout", o => o.ConnectTimeout, (o, v) => o.ConnectTimeout = v);
        DefineTimeout(i, "first-byte-timeout", o => o.FirstByteTimeout, (o, v) => o.FirstByteTimeout = v);
        DefineTimeout(i, "between-bytes-timeout", o => o.BetweenBytesTimeout, (o, v) => o.BetweenBytesTimeout = v);
        Func(i, "http-error-code", (r, c, a, res) =>
            res[0] = Option(r.Table.Get<IoError>(ReadRep(c, a[0])).Code?.ToVal()));

        // The response to an outgoing request.
        Func(i, "[method]future-incoming-response.subscribe", (r, c, a, res) =>
            res[0] = Resource(c, ResourceTypes.Pollable, r.Table.Add(new Pollable(r.Table.Get<FutureIncomingResponse>(ReadRep(c, a[0])).Response))));
        Func(i, "[method]future-incoming-response.get", (r, c, a, res) =>
        {
            var future = r.Table.Get<FutureIncomingResponse>(ReadRep(c, a[0]));
            res[0] = GetFuture(future, future.Response,
                response => Ok(Resource(c, ResourceTypes.IncomingResponse, r.Table.Add(response))),
                failure =>
                {
                    var code = ErrorFor(failure);
                    if (Trace)
                    {
                        Console.Error.WriteLine($"wasi:http outgoing request failed: {code.Case} {code.Detail}: {failure.Message}");
                    }
                    return Err(code.ToVal());
                });
        });
        Func(i, "[method]incoming-response.status", (r, c, a, res) => res[0] = U16(r.Table.Get<IncomingResponse>(ReadRep(c, a[0])).Status));
        Func(i, "[method]incoming-response.headers", (r, c, a, res) =>
            res[0] = NewFields(c, r, r.Table.Get<IncomingResponse>(ReadRep(c, a[0])).Headers));
        Func(i, "[method]incoming-response.consume", (r, c, a, res) =>
        {
            var response = r.Table.Get<IncomingResponse>(ReadRep(c, a[0]));
            if (response.Consumed)
            {
                res[0] = Err();
                return;
            }
            response.Consumed = true;
            var message = response.Message;
            var stream = message.Content.ReadAsStreamAsync().GetAwaiter().GetResult();
            res[0] = Ok(Resource(c, ResourceTypes.IncomingBody,
                r.Table.Add(new IncomingBody(stream, () => OutgoingHttp.TrailersOf(message), response.BetweenBytes))));
        });
    }

    private static void DefineTimeout(IntPtr i, string name, Func<RequestOptions, TimeSpan?> get, Action<RequestOptions, TimeSpan?> set)
    {
        Func(i, $"[method]request-options.{name}", (r, c, a, res) =>
            res[0] = Option(get(r.Table.Get<RequestOptions>(ReadRep(c, a[0]))) is { } value ? U64((ulong)(value.Ticks * 100)) : null));
        Func(i, $"[method]request-options.set-{name}", (r, c, a, res) =>
        {
            var options = r.Table.Get<RequestOptions>(ReadRep(c, a[0]));
            var value = OptionValue(a[1]);
            set(options, value == null ? null : TimeSpan.FromTicks((long)Math.Min(value->A / 100, (ulong)TimeSpan.MaxValue.Ticks)));
            res[0] = Ok();
        });
    }

    /// <summary>
    /// <c>future-*.get</c>: none while <paramref name="task"/> runs, some(err) once its value was taken, otherwise
    /// some(ok(...)) of what <paramref name="succeeded"/> or <paramref name="failed"/> makes of the outcome, exactly once.
    /// </summary>
    private static Val GetFuture<T>(IHostFuture future, Task<T> task, Func<T, Val> succeeded, Func<Exception, Val> failed)
    {
        if (!task.IsCompleted)
        {
            return Option(null);
        }
        if (future.Taken)
        {
            return Option(Err());
        }
        future.Taken = true;
        return Option(Ok(task.IsCompletedSuccessfully
            ? succeeded(task.Result)
            : failed(task.Exception?.InnerException ?? new OperationCanceledException())));
    }

    private static ErrorCode ErrorFor(Exception e) => OutgoingHttp.ErrorOf(e) ?? new ErrorCode("internal-error", e.Message);

    /// <summary>wasi:http/outgoing-handler.handle: sends the guest's request with HttpClient (OutgoingHttp).</summary>
    public static void OutgoingHandle(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        var rep = ReadRep(c, a[0]);
        var request = r.Table.Get<OutgoingRequest>(rep);
        r.Table.Remove(rep);
        RequestOptions? options = null;
        if (OptionValue(a[1]) is var handle && handle != null)
        {
            var optionsRep = ReadRep(c, *handle);
            options = r.Table.Get<RequestOptions>(optionsRep);
            r.Table.Remove(optionsRep);
        }
        var (future, error) = OutgoingHttp.Send(r, request, options);
        res[0] = future is not null
            ? Ok(Resource(c, ResourceTypes.FutureIncomingResponse, r.Table.Add(future)))
            : Err(error!.ToVal());
    }

    private static Val NewFields(IntPtr c, ProxyRequest r, Fields fields) => Resource(c, ResourceTypes.Fields, r.Table.Add(fields));

    private static Fields FieldsOf(ProxyRequest r, IntPtr c, in Val v) => r.Table.Get<Fields>(ReadRep(c, v));

    private static IncomingRequest Request(ProxyRequest r, IntPtr c, in Val v) => r.Table.Get<IncomingRequest>(ReadRep(c, v));

    private static OutgoingRequest Outgoing(ProxyRequest r, IntPtr c, in Val v) => r.Table.Get<OutgoingRequest>(ReadRep(c, v));

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static Val? Refuse(Fields fields, string name) =>
        fields.Immutable ? Err(Variant("immutable")) : !ValidName(name) ? Err(Variant("invalid-syntax")) : null;

    // RFC 9110 token characters.
    private static bool ValidName(string name) =>
        name.Length > 0 && name.All(ch => ch < 128 && (char.IsAsciiLetterOrDigit(ch) || "!#$%&'*+-.^_`|~".Contains(ch)));

    private static readonly string[] Methods = ["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"];

    private static Val Method(string method)
    {
        var lower = method.ToLowerInvariant();
        return Methods.Contains(lower) && method == method.ToUpperInvariant()
            ? Variant(lower)
            : Variant("other", ComponentApi.String(method));
    }

    private static string ReadMethod(in Val v)
    {
        var name = CaseName(v);
        return name == "other" ? ReadString(*Payload(v)) : name.ToUpperInvariant();
    }

    private static Val Scheme(string scheme) => scheme.ToLowerInvariant() switch
    {
        "http" => Variant("HTTP"),
        "https" => Variant("HTTPS"),
        _ => Variant("other", ComponentApi.String(scheme)),
    };

    private static Val OptionalString(string? value) => Option(value is null ? null : ComponentApi.String(value));

    private static string? ReadOptionalString(in Val v) => OptionValue(v) is var p && p != null ? ReadString(*p) : null;

    internal static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
