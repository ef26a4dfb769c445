using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Google.Protobuf;

namespace Ttrpc;

/// <summary>
/// One ttrpc connection's socket I/O: a read loop that hands every frame to the owner
/// while its bytes are still in the pipe's buffer, and a writer that serializes frames
/// from any number of concurrent callers straight into the pipe.
/// </summary>
internal abstract class FrameStream : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly FrameReader _frames = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private int _queuedWriters;
    private int _closed;

    protected FrameStream(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 4 * 1024, leaveOpen: true));
    }

    /// <summary>The connected socket, for peer credential checks.</summary>
    protected Socket Socket => _socket;

    /// <summary>True once the connection is closed in either direction.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Called for each complete frame; <paramref name="data"/> is only valid during the call.</summary>
    protected abstract void OnFrame(in FrameHeader header, in ReadOnlySequence<byte> data);

    /// <summary>Called for a frame whose announced length exceeds the limit; its data is being skipped.</summary>
    protected abstract void OnOversizedFrame(in FrameHeader header);

    /// <summary>Called once when the read loop ends, for whatever reason.</summary>
    protected abstract void OnClosed(Exception? error);

    /// <summary>Reads frames until the peer closes, the socket fails or <see cref="Close"/> is called.</summary>
    public async Task RunAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult result = await _reader.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (true)
                {
                    FrameReadResult r = _frames.TryRead(ref buffer, out FrameHeader header, out ReadOnlySequence<byte> data);
                    if (r == FrameReadResult.Incomplete)
                    {
                        break;
                    }

                    if (r == FrameReadResult.Frame)
                    {
                        OnFrame(header, data);
                    }
                    else
                    {
                        OnOversizedFrame(header);
                    }
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // A peer going away mid-frame is an ordinary end of the connection.
            error = e;
        }
        finally
        {
            Close();
            await _reader.CompleteAsync().ConfigureAwait(false);
            OnClosed(error);
        }
    }

    /// <summary>
    /// Writes one frame whose body is <paramref name="message"/>. Concurrent callers queue;
    /// only the last writer in a burst flushes, so replies to pipelined calls share syscalls.
    /// </summary>
    public async ValueTask SendAsync(uint streamId, FrameType type, FrameFlags flags, IMessage message)
    {
        int size = message.CalculateSize();
        if (size > FrameHeader.MaxDataLength)
        {
            throw new MessageTooLargeException(size);
        }

        Interlocked.Increment(ref _queuedWriters);
        bool queued = true;
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            Span<byte> span = _writer.GetSpan(FrameHeader.Size + size);
            new FrameHeader((uint)size, streamId, type, flags).Write(span);
            message.WriteTo(span.Slice(FrameHeader.Size, size));
            _writer.Advance(FrameHeader.Size + size);
            queued = false;
            if (Interlocked.Decrement(ref _queuedWriters) == 0)
            {
                await _writer.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (queued)
            {
                Interlocked.Decrement(ref _queuedWriters);
            }

            _writeLock.Release();
        }
    }

    /// <summary>Shuts the socket down so the read loop ends; idempotent.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _reader.CancelPendingRead();
    }

    /// <inheritdoc />
    public virtual async ValueTask DisposeAsync()
    {
        Close();
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await _writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // Unflushed bytes for a dead peer.
        }
        finally
        {
            _writeLock.Release();
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
