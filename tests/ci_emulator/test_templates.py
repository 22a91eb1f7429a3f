"""Templates on the wire (`/template`), and their resolution into the jobs that name them."""

from __future__ import annotations

import pytest
from lxml import etree

from ci_emulator.errors import CiError
from ci_emulator.server import RunningEmulator
from ci_emulator.templates import TemplateBody, TemplateStore, resolve_job_templates
from tests.ci_emulator.conftest import BUCKET, OTHER_BUCKET, Reply, SignedClient, pairs

TRANSCODE = (
    "<Tag>Transcode</Tag><Name>mp4-720p</Name>"
    "<Container><Format>mp4</Format></Container>"
    "<Video><Codec>H.264</Codec><Width>1280</Width></Video>"
    "<Audio><Codec>aac</Codec></Audio>"
)
# TranscodePro's Video with every node catalogue A.12 marks required.
PRO_VIDEO = (
    "<Video><Codec>xavc</Codec><Profile>XAVC-HD_422_10bit</Profile><Width>1920</Width>"
    "<Height>1080</Height><Interlaced>true</Interlaced><Fps>30000/1001</Fps></Video>"
)
# A watermark's nodes its template docs mark required: Type, Pos, LocMode, Dx (catalogue A.3),
# and Text.Text for a Type Text.
TEXT_MARK = (
    "<Type>Text</Type><Pos>TopLeft</Pos><LocMode>Absolute</LocMode><Dx>10</Dx>"
    "<Text><Text>hi</Text></Text>"
)


async def create(client: SignedClient, body: str) -> Reply:
    return await client.send("POST", "/template", body=f"<Request>{body}</Request>".encode())


async def created_id(client: SignedClient, body: str) -> str:
    template_id = (await create(client, body)).ok().xml().findtext("Template/TemplateId")
    assert template_id
    return template_id


async def test_create_answers_the_template_in_its_kind_container(client: SignedClient) -> None:
    reply = (await create(client, TRANSCODE)).ok()
    root = reply.xml()
    assert [child.tag for child in root] == ["RequestId", "Template"]
    template = root.find("Template")
    assert template is not None
    assert [child.tag for child in template] == [
        "Tag", "TemplateId", "Name", "BucketId", "Category", "TransTpl", "CreateTime", "UpdateTime",
    ]  # fmt: skip
    assert template.findtext("TemplateId", "").startswith("t1")
    assert (template.findtext("BucketId"), template.findtext("Category")) == (BUCKET, "Custom")
    assert pairs(template, "TransTpl/Video") == [("Codec", "H.264"), ("Width", "1280")]


@pytest.mark.parametrize(
    ("body", "container"),
    [
        ("<Tag>Snapshot</Tag><Name>s</Name><Snapshot><Mode>Interval</Mode></Snapshot>", "Snapshot"),
        (
            "<Tag>Animation</Tag><Name>a</Name><Container><Format>gif</Format></Container>"
            "<Video><Codec>gif</Codec></Video>",
            "Animation",
        ),
        (
            "<Tag>SuperResolution</Tag><Name>sr</Name><Resolution>sdtohd</Resolution>",
            "SuperResolution",
        ),
        ("<Tag>Tts</Tag><Name>tts</Name><Mode>Sync</Mode><VoiceType>ruxue</VoiceType>", "TtsTpl"),
        (
            f"<Tag>Watermark</Tag><Name>w</Name><Watermark>{TEXT_MARK}</Watermark>",
            "Watermark",
        ),
    ],
)
async def test_each_kind_comes_back_in_its_container(
    client: SignedClient, body: str, container: str
) -> None:
    template = (await create(client, body)).ok().xml().find("Template")
    assert template is not None and template.find(container) is not None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("<Name>x</Name>", "Tag is required"),
        ("<Tag>Nope</Tag><Name>x</Name>", "not a template kind"),
        ("<Tag>Transcode</Tag><Container><Format>mp4</Format></Container>", "Name is required"),
        ("<Tag>Transcode</Tag><Name>a b</Name><Container><Format>mp4</Format></Container>", "Name"),
        ("<Tag>Transcode</Tag><Name>x</Name><Video><Codec>H.264</Codec></Video>", "Format"),
        ("<Tag>Snapshot</Tag><Name>x</Name>", "Snapshot is required"),
        ("<Tag>VideoProcess</Tag><Name>x</Name>", "ColorEnhance"),
        (
            "<Tag>Animation</Tag><Name>x</Name><Container><Format>gif</Format></Container>"
            "<Video><Codec>H.264</Codec></Video>",
            "Video.Codec must be one of gif, webp",
        ),
        (
            "<Tag>SuperResolution</Tag><Name>x</Name><Resolution>4k</Resolution>",
            "Resolution must be one of",
        ),
        (
            "<Tag>Snapshot</Tag><Name>x</Name><Snapshot><Mode>Random</Mode></Snapshot>",
            "Snapshot.Mode must be one of",
        ),
        (
            "<Tag>VoiceSeparate</Tag><Name>x</Name><AudioMode>Karaoke</AudioMode>",
            "AudioMode must be one of",
        ),
        # TranscodePro (catalogue A.12): Container.Format mxf | mov | mkv; Audio { Codec* }.
        (
            f"<Tag>TranscodePro</Tag><Name>x</Name>{PRO_VIDEO}"
            "<Container><Format>mp4</Format></Container>",
            "Container.Format must be one of",
        ),
        (
            f"<Tag>TranscodePro</Tag><Name>x</Name>{PRO_VIDEO}"
            "<Container><Format>mxf</Format></Container><Audio><Remove>false</Remove></Audio>",
            "Audio.Codec is required when Audio is given",
        ),
        (
            "<Tag>Watermark</Tag><Name>x</Name><Watermark><Type>Text</Type>"
            "<Text><Text>hi</Text></Text></Watermark>",
            "Watermark.Pos is required",
        ),
        (
            "<Tag>Watermark</Tag><Name>x</Name>"
            f"<Watermark>{TEXT_MARK.replace('<Dx>10</Dx>', '')}</Watermark>",
            "Watermark.Dx is required",
        ),
        (
            "<Tag>Watermark</Tag><Name>x</Name>"
            f"<Watermark>{TEXT_MARK.replace('Absolute', 'Centre')}</Watermark>",
            "Watermark.LocMode must be one of",
        ),
        (
            "<Tag>Watermark</Tag><Name>x</Name>"
            f"<Watermark>{TEXT_MARK.replace('<Text><Text>hi</Text></Text>', '')}</Watermark>",
            "Watermark.Text.Text is required when Type is Text",
        ),
        (
            "<Tag>Watermark</Tag><Name>x</Name>"
            f"<Watermark>{TEXT_MARK.replace('>Text</Type>', '>Image</Type>')}</Watermark>",
            "Watermark.Image.Url is required when Type is Image",
        ),
    ],
)
async def test_create_refuses_what_ci_refuses(client: SignedClient, body: str, why: str) -> None:
    reply = await create(client, body)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert why in (reply.xml().findtext("Message") or "")


async def test_an_animation_template_needs_no_container_as_its_job_needs_none(
    client: SignedClient,
) -> None:
    # Catalogue A.6/A.12: an Animation's Container { Format } is optional (gif | webp, the job
    # takes the format from Video.Codec when absent); only Video.Codec is required.
    video = "<Video><Codec>webp</Codec></Video>"
    reply = (await create(client, f"<Tag>Animation</Tag><Name>anim</Name>{video}")).ok()
    assert reply.xml().findtext("Template/Animation/Video/Codec") == "webp"
    mp4 = await create(
        client,
        f"<Tag>Animation</Tag><Name>x</Name><Container><Format>mp4</Format></Container>{video}",
    )
    assert (mp4.status, mp4.code) == (400, "InvalidArgument")
    assert "Container.Format must be one of gif, webp" in (mp4.xml().findtext("Message") or "")


FRAGMENT = (
    "<ConcatFragment><Url>https://x.cos.ap-guangzhou.myqcloud.com/a.mp4</Url></ConcatFragment>"
)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # "是" in CI's Concat template doc: ConcatTemplate, its Container, Container.Format.
        ("<Tag>Concat</Tag><Name>c</Name>", "ConcatTemplate is required for a Concat template"),
        (
            f"<Tag>Concat</Tag><Name>c</Name><ConcatTemplate>{FRAGMENT}</ConcatTemplate>",
            "ConcatTemplate.Container.Format is required for Concat",
        ),
        # "是" in CI's VoiceSeparate template doc (a job's is optional).
        (
            "<Tag>VoiceSeparate</Tag><Name>v</Name><AudioConfig><Codec>aac</Codec></AudioConfig>",
            "Request.AudioMode is required for VoiceSeparate",
        ),
    ],
)
async def test_concat_and_voice_separate_templates_need_what_their_docs_mark(
    client: SignedClient, body: str, why: str
) -> None:
    """What these templates require is what CI's template docs mark "是" (catalogue A.12 leaves
    the marks out), and no more: AudioConfig, "是" too but every child defaulted, stays optional."""
    reply = await create(client, body)
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert why in (reply.xml().findtext("Message") or "")
    concat = (
        f"<ConcatTemplate>{FRAGMENT}<Container><Format>mp4</Format></Container></ConcatTemplate>"
    )
    (await create(client, f"<Tag>Concat</Tag><Name>c</Name>{concat}")).ok()
    (
        await create(client, "<Tag>VoiceSeparate</Tag><Name>v</Name><AudioMode>IsAudio</AudioMode>")
    ).ok()


async def test_a_name_is_used_once_per_kind(client: SignedClient) -> None:
    await created_id(client, TRANSCODE)
    again = await create(client, TRANSCODE)
    assert (again.status, again.code) == (400, "InvalidArgument")


async def test_describe_filters_by_category_tag_ids_and_name_and_pages(
    client: SignedClient,
) -> None:
    first = await created_id(client, TRANSCODE)
    second = await created_id(client, TRANSCODE.replace("mp4-720p", "mp4-1080p"))
    snap = await created_id(
        client, "<Tag>Snapshot</Tag><Name>thumbs</Name><Snapshot><Mode>Interval</Mode></Snapshot>"
    )

    async def ids(**params: str) -> list[str]:
        reply = (await client.send("GET", "/template", params=params)).ok().xml()
        return [node.text or "" for node in reply.findall("TemplateList/TemplateId")]

    assert await ids() == [first, second, snap]  # Custom by default, oldest first
    assert await ids(tag="Snapshot") == [snap]
    assert await ids(ids=f"{snap},{first}") == [first, snap]
    assert await ids(name="mp4-") == [first, second]
    assert await ids(pageNumber="2", pageSize="2") == [snap]
    official = await ids(category="Official")
    assert official and all(template_id.startswith("t0") for template_id in official)
    reply = (await client.send("GET", "/template", params={"pageSize": "1"})).ok().xml()
    assert (reply.findtext("TotalCount"), reply.findtext("PageSize")) == ("3", "1")


async def test_update_replaces_the_parameters_and_keeps_the_kind(client: SignedClient) -> None:
    template_id = await created_id(client, TRANSCODE)
    body = TRANSCODE.replace("<Width>1280</Width>", "<Width>1920</Width>").replace(
        "mp4-720p", "mp4-1080p"
    )
    reply = await client.send(
        "PUT", f"/template/{template_id}", body=f"<Request>{body}</Request>".encode()
    )
    template = reply.ok().xml().find("Template")
    assert template is not None
    assert (template.findtext("Name"), template.findtext("TransTpl/Video/Width")) == (
        "mp4-1080p",
        "1920",
    )
    other_kind = await client.send(
        "PUT",
        f"/template/{template_id}",
        body=b"<Request><Tag>Snapshot</Tag><Name>x</Name><Snapshot/></Request>",
    )
    assert other_kind.status == 400


async def test_delete_and_what_cannot_be_deleted(client: SignedClient) -> None:
    template_id = await created_id(client, TRANSCODE)
    reply = (await client.send("DELETE", f"/template/{template_id}")).ok().xml()
    assert reply.findtext("TemplateId") == template_id
    assert (await client.send("DELETE", f"/template/{template_id}")).status == 400
    official = (await client.send("GET", "/template", params={"category": "Official"})).xml()
    official_id = official.findtext("TemplateList/TemplateId")
    assert (await client.send("DELETE", f"/template/{official_id}")).status == 400


async def test_templates_belong_to_their_bucket(client: SignedClient) -> None:
    template_id = await created_id(client, TRANSCODE)
    client.bucket, client.region = OTHER_BUCKET, "ap-beijing"
    assert (await client.send("DELETE", f"/template/{template_id}")).status == 400


# ---- resolution into a job's Operation --------------------------------------------------------


def store_with(*bodies: TemplateBody) -> tuple[TemplateStore, list[str]]:
    store = TemplateStore(0.0, (BUCKET,))
    return store, [store.create(BUCKET, body, 1.0).template_id for body in bodies]


def request(operation: str, tag: str = "Transcode") -> etree._Element:
    return etree.fromstring(
        f"<Request><Tag>{tag}</Tag><Input><Object>a.mp4</Object></Input>"
        f"<Operation>{operation}</Operation></Request>"
    )


TRANSCODE_BODY = TemplateBody(
    "Transcode",
    "720p",
    [
        ("Container", [("Format", "mp4")]),
        ("Video", [("Codec", "H.264"), ("Width", "1280")]),
        ("AudioMixArray", [("AudioSource", "a.mp3")]),
        ("AudioMixArray", [("AudioSource", "b.mp3")]),
    ],
)


def test_the_template_wins_and_inline_parameters_it_lacks_stay() -> None:
    store, (template_id,) = store_with(TRANSCODE_BODY)
    root = request(
        f"<TemplateId>{template_id}</TemplateId>"
        "<Transcode><Video><Width>640</Width><Bitrate>900</Bitrate></Video>"
        "<AudioMixArray><AudioSource>inline.mp3</AudioSource></AudioMixArray></Transcode>"
        "<Output><Object>out.mp4</Object></Output>"
    )
    resolve_job_templates(root, store, BUCKET)
    operation = root.find("Operation")
    assert operation is not None
    assert operation.find("TemplateId") is None  # resolved: the engine runs inline parameters
    assert operation.findtext("TemplateName") == "720p"
    assert pairs(operation, "Transcode/Video") == [
        ("Width", "1280"),  # the template's value won
        ("Bitrate", "900"),  # kept: the template does not set it
        ("Codec", "H.264"),
    ]
    assert operation.findtext("Transcode/Container/Format") == "mp4"
    sources = [n.text for n in operation.findall("Transcode/AudioMixArray/AudioSource")]
    assert sources == ["a.mp3", "b.mp3"]  # a repeated node is the template's, whole
    assert operation.findtext("Output/Object") == "out.mp4"


def test_transcode_and_watermark_template_ids_resolve_too() -> None:
    watermark = TemplateBody("Watermark", "logo", [("Type", "Text"), ("Pos", "TopLeft")])
    sr = TemplateBody("SuperResolution", "sd", [("Resolution", "sdtohd")])
    store, (transcode_id, watermark_id, sr_id) = store_with(TRANSCODE_BODY, watermark, sr)
    root = request(
        f"<TemplateId>{sr_id}</TemplateId><TranscodeTemplateId>{transcode_id}"
        f"</TranscodeTemplateId><WatermarkTemplateId>{watermark_id}</WatermarkTemplateId>",
        tag="SuperResolution",
    )
    resolve_job_templates(root, store, BUCKET)
    operation = root.find("Operation")
    assert operation is not None
    assert operation.findtext("SuperResolution/Resolution") == "sdtohd"
    assert operation.findtext("Transcode/Container/Format") == "mp4"
    assert pairs(operation, "Watermark") == [("Type", "Text"), ("Pos", "TopLeft")]
    assert operation.find("TranscodeTemplateId") is None
    assert operation.find("WatermarkTemplateId") is None


@pytest.mark.parametrize(
    ("operation", "message"),
    [("<TemplateId>t1nothere</TemplateId>", "does not exist"), ("", "")],
)
def test_an_unknown_template_is_refused(operation: str, message: str) -> None:
    store, _ = store_with()
    root = request(operation)
    if not message:
        resolve_job_templates(root, store, BUCKET)  # no template named: nothing to do
        return
    with pytest.raises(CiError) as caught:
        resolve_job_templates(root, store, BUCKET)
    assert caught.value.code == "InvalidArgument" and message in caught.value.message


def test_a_template_of_another_kind_is_refused() -> None:
    store, (template_id,) = store_with(TRANSCODE_BODY)
    with pytest.raises(CiError, match="is a Transcode template, not Snapshot"):
        resolve_job_templates(
            request(f"<TemplateId>{template_id}</TemplateId>", tag="Snapshot"), store, BUCKET
        )


async def test_the_submit_path_resolves_templates_before_it_validates(
    client: SignedClient, emu: RunningEmulator
) -> None:
    body = (
        "<Request><Tag>Transcode</Tag><Input><Object>input/a.mp4</Object></Input>"
        "<Operation><TemplateId>t1nothere</TemplateId></Operation></Request>"
    )
    reply = await client.send("POST", "/jobs", body=body.encode())
    assert (reply.status, reply.code) == (400, "InvalidArgument")
    assert "template t1nothere does not exist" in (reply.xml().findtext("Message") or "")
    assert emu.state.jobs_created == 0


async def test_a_job_echoes_the_template_id_it_was_sent_and_the_template_s_name(
    client: SignedClient, emu: RunningEmulator
) -> None:
    """CI's JobsDetail.Operation echoes the request (catalogue §1.3: "Result: MediaResult,
    MediaInfo, TemplateName, echo of request"): the TemplateId sent, beside TemplateName; the
    parameters the emulator merges in to run the job are its own business, not CI's echo."""
    emu.state.pause_scheduling()
    template_id = await created_id(client, TRANSCODE)
    body = (
        "<Request><Tag>Transcode</Tag><Input><Object>input/a.mp4</Object></Input>"
        f"<Operation><TemplateId>{template_id}</TemplateId><Output><Region>ap-guangzhou</Region>"
        f"<Bucket>{BUCKET}</Bucket><Object>out/t.mp4</Object></Output></Operation></Request>"
    )
    submitted = (await client.send("POST", "/jobs", body=body.encode())).ok().xml()
    job_id = submitted.findtext("JobsDetail/JobId")
    described = (await client.send("GET", f"/jobs/{job_id}")).ok().xml()
    for detail in (submitted.find("JobsDetail"), described.find("JobsDetail")):
        assert detail is not None
        assert detail.findtext("Operation/TemplateId") == template_id
        assert detail.findtext("Operation/TemplateName") == "mp4-720p"
        assert detail.find("Operation/Transcode") is None
    assert [name for name, _ in pairs(submitted, "JobsDetail/Operation")] == [
        "TemplateId", "TemplateName", "Output", "JobLevel",
    ]  # fmt: skip
