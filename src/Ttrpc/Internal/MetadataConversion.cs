using Google.Protobuf.Collections;
using Grpc.Core;
using Ttrpc.Protocol;

namespace Ttrpc;

/// <summary>Converts between gRPC <see cref="Metadata"/> and ttrpc's key/value list.</summary>
internal static class MetadataConversion
{
    public static Metadata ToMetadata(RepeatedField<KeyValue> entries)
    {
        var metadata = new Metadata();
        foreach (KeyValue kv in entries)
        {
            try
            {
                metadata.Add(kv.Key.ToLowerInvariant(), kv.Value);
            }
            catch (ArgumentException)
            {
                // A key gRPC cannot represent (or a -bin key without bytes) is dropped rather
                // than failing the call: ttrpc does not constrain keys, gRPC does.
            }
        }

        return metadata;
    }

    public static void AddTo(RepeatedField<KeyValue> entries, Metadata? metadata)
    {
        if (metadata is null)
        {
            return;
        }

        foreach (Metadata.Entry entry in metadata)
        {
            // ttrpc metadata is text only.
            if (!entry.IsBinary)
            {
                entries.Add(new KeyValue { Key = entry.Key, Value = entry.Value });
            }
        }
    }
}
